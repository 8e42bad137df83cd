"""The OpenTelemetry SDK, its exporters and instrumentations (imported only when on).

Exporters read the standard `OTEL_EXPORTER_OTLP_*` variables (endpoint, headers, protocol
http/protobuf, timeout) themselves.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler

from .export import SafeExporter
from .sampling import EntryPoints
from .scrub import client_request_hook, server_request_hook

log = logging.getLogger(__name__)
_tracer_provider: TracerProvider | None = None
_meter_provider: MeterProvider | None = None


def install(component: str) -> None:
    global _tracer_provider, _meter_provider
    _warn_about_protocol()
    resource = _resource(component)
    _tracer_provider = TracerProvider(resource=resource, sampler=_sampler())
    _tracer_provider.add_span_processor(BatchSpanProcessor(SafeExporter(OTLPSpanExporter())))
    trace.set_tracer_provider(_tracer_provider)
    if os.environ.get("OTEL_METRICS_EXPORTER", "otlp").strip().lower() != "none":
        reader = PeriodicExportingMetricReader(_metric_exporter(component))
        _meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        metrics.set_meter_provider(_meter_provider)
    _instrument()


def instrument_fastapi(app: Any) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        server_request_hook=server_request_hook,
        excluded_urls="api/health,api/metrics",
        exclude_spans=["receive", "send"],  # one span per request, not one per ASGI message
    )


def _warn_about_protocol() -> None:
    """Only OTLP over HTTP is installed: a collector's gRPC port (4317) answers nothing we
    send, so say so once instead of failing every export quietly."""
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        protocol = os.environ.get(name, "").strip().lower()
        if protocol and protocol != "http/protobuf":
            log.warning(
                "%s=%s: only http/protobuf is supported; point OTEL_EXPORTER_OTLP_ENDPOINT "
                "at the collector's OTLP/HTTP port (4318 by default)",
                name,
                protocol,
            )


def flush(timeout_millis: int) -> None:
    if _tracer_provider is not None:
        _tracer_provider.force_flush(timeout_millis)
    if _meter_provider is not None:
        _meter_provider.force_flush(timeout_millis)


def _resource(component: str) -> Resource:
    attributes: dict[str, str] = {
        "service.namespace": "holovitals",
        "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
    }
    if not os.environ.get("OTEL_SERVICE_NAME"):  # the user's name wins
        attributes["service.name"] = f"holovitals-sync-{component}"
    return Resource.create(attributes)


def _sampler() -> Sampler | None:
    """Ours unless the user chose one with `OTEL_TRACES_SAMPLER` (None: the SDK reads it)."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    return ParentBased(root=EntryPoints())


def _metric_exporter(component: str) -> OTLPMetricExporter:
    """Workers send deltas: each RQ work horse is a fork that lives for one job, so a
    cumulative counter would start from zero again in every horse."""
    if component != "worker":
        return OTLPMetricExporter()
    delta = AggregationTemporality.DELTA
    return OTLPMetricExporter(
        preferred_temporality={
            Counter: delta,
            Histogram: delta,
            ObservableCounter: delta,
            UpDownCounter: AggregationTemporality.CUMULATIVE,
        }
    )


def _instrument() -> None:
    # httpx: every request to an EHR or a webhook subscriber, with its status; the URL is
    # cut to what carries no patient data (scrub).
    HTTPXClientInstrumentor().instrument(request_hook=client_request_hook)
    # SQL statements are recorded with their placeholders, never the bound values. The
    # instrumentation declares SQLAlchemy < 2.1 only; the engine events it listens to are
    # the same in 2.1 (tests/integration/telemetry checks the SQL spans arrive).
    SQLAlchemyInstrumentor().instrument(enable_commenter=False, skip_dep_check=True)
    # Redis commands are recorded as "LPUSH ? ?": the instrumentation drops the arguments.
    RedisInstrumentor().instrument()
