"""Whether tracing is on, and starting it once per process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

# The standard variables that name a collector; without one there is nowhere to send spans.
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_started: str | None = None  # the component this process started tracing for


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    """On when a collector is named and the SDK is not disabled (`OTEL_SDK_DISABLED`)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def started() -> bool:
    return _started is not None


def start(component: str) -> bool:
    """Start the SDK for this process (`api`, `worker`, `mllp`), once; False when off.

    Call it before the process creates its database engine and HTTP clients: the
    instrumentations wrap what is created after them.
    """
    global _started
    if _started is None and enabled():
        from . import sdk  # the SDK is imported only when tracing is on

        sdk.install(component)
        _started = component
    return _started is not None


def instrument_api(app: Any) -> None:
    """A span per API request (FastAPI), the URL scrubbed; health and metrics polls left
    out. A no-op when tracing is off."""
    if _started is not None:
        from . import sdk

        sdk.instrument_fastapi(app)


def flush(timeout_millis: int = 5000) -> None:
    """Send what is buffered now: a forked RQ work horse ends with `os._exit`, which runs
    no exit hook, so the spans of its job would be lost."""
    if _started is not None:
        from . import sdk

        sdk.flush(timeout_millis)


def trace_id_of_current_span() -> str | None:
    """The current trace's id (32 hex digits), or None when no sampled trace is running."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return format(context.trace_id, "032x")
