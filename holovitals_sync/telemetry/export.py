"""The last check before spans leave the process: no exception text, no foreign error text.

An instrumentation records what it was given: the ASGI one adds the exception's message and
stack to the request's span, the SQLAlchemy one puts the database's error text in the
span's status, and a database's error may quote the row it refused ("Failing row contains
(...)"), which can be a patient's record. So every span is rewritten on its way out:
exception events keep their type only, and a status description stays only where the
product's own code set it (from `platform.failures.safe_error`, which holds no PHI).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

OWN_SCOPES = "holovitals_sync"
KEPT_EXCEPTION_ATTRIBUTES = ("exception.type", "exception.escaped")


def _safe_event(event: Event) -> Event:
    if event.name != "exception":
        return event
    attributes = event.attributes or {}
    kept = {k: attributes[k] for k in KEPT_EXCEPTION_ATTRIBUTES if k in attributes}
    return Event(event.name, kept, event.timestamp)


def _own(span: ReadableSpan) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name.startswith(OWN_SCOPES)


def safe_span(span: ReadableSpan) -> ReadableSpan:
    """The span as it may leave: exception text and foreign status descriptions removed."""
    status = span.status
    if status.description and not _own(span):
        status = Status(status.status_code)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=[_safe_event(e) for e in span.events],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class SafeExporter(SpanExporter):
    """Wraps the OTLP exporter: spans are made safe, then exported."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([safe_span(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
