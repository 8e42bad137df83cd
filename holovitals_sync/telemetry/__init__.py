"""OpenTelemetry traces and metrics, off by default and free when off.

Switched on by the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`); every
other `OTEL_*` setting (headers, protocol, service name, resource attributes, sampler) is
read by the OpenTelemetry SDK itself. When off, the SDK is never imported and the spans the
code opens are the API's no-op spans.

- `setup`: each process (API, worker, MLLP listener) starts the SDK once, with the
  instrumentations that fit it (FastAPI, httpx, SQLAlchemy, Redis).
- `jobs`: the trace context travels in every RQ job's meta, so a trace runs from the click or
  the API call through the queue to the worker and on to the EHR and the webhooks it caused.
- `scrub`: what the instrumentations would record that may carry PHI (query strings, ids in
  paths) is cut before a span leaves the process.
- `logs`: log lines carry the trace and job ids, as text or as JSON lines.
"""

from __future__ import annotations

from opentelemetry.trace import SpanContext

from . import jobs, logs
from .setup import enabled, flush, instrument_api, start, started, trace_id_of_current_span
from .spans import annotate, entry, recording, step, within

__all__ = [
    "SpanContext",
    "annotate",
    "entry",
    "enabled",
    "flush",
    "instrument_api",
    "jobs",
    "logs",
    "recording",
    "start",
    "started",
    "step",
    "within",
    "trace_id_of_current_span",
]
