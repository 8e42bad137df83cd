"""An OTLP/HTTP collector on loopback: what the product's processes export, decoded.

It speaks the protocol a real collector (Jaeger, Tempo, the OpenTelemetry Collector)
speaks: protobuf `ExportTraceServiceRequest` / `ExportMetricsServiceRequest` POSTed to
/v1/traces and /v1/metrics, decoded with the official `opentelemetry-proto` messages.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.loopback import serve


@dataclass
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    events: list[dict[str, Any]]
    links: list[tuple[str, str]]  # (trace id, span id) of each linked span

    def text(self) -> str:
        """Everything this span says, as one string (for scanning)."""
        return repr((self.name, self.attributes, self.status_message, self.events))


@dataclass
class Collector:
    endpoint: str = ""
    spans: list[Span] = field(default_factory=list)
    metric_names: set[str] = field(default_factory=set)
    resources: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def named(self, name: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.name == name]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _spans(body: bytes) -> tuple[list[Span], list[dict[str, Any]]]:
    request = ExportTraceServiceRequest.FromString(body)
    spans, resources = [], []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        resources.append(resource)
        for scope in resource_spans.scope_spans:
            for s in scope.spans:
                spans.append(
                    Span(
                        service=str(resource.get("service.name")),
                        name=s.name,
                        kind=s.kind,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(),
                        attributes=_attributes(s.attributes),
                        status_code=s.status.code,
                        status_message=s.status.message,
                        events=[{"name": e.name, **_attributes(e.attributes)} for e in s.events],
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in s.links],
                    )
                )
    return spans, resources


def _metric_names(body: bytes) -> set[str]:
    request = ExportMetricsServiceRequest.FromString(body)
    return {
        metric.name
        for resource_metrics in request.resource_metrics
        for scope in resource_metrics.scope_metrics
        for metric in scope.metrics
    }


@contextmanager
def collector() -> Iterator[Collector]:
    """A collector on a free loopback port; `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT
    names."""
    found = Collector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with found.lock:
                if self.path == "/v1/traces":
                    spans, resources = _spans(body)
                    found.spans.extend(spans)
                    found.resources.extend(resources)
                elif self.path == "/v1/metrics":
                    found.metric_names |= _metric_names(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serve(Handler, path="") as url:
        found.endpoint = url
        yield found
