"""The pieces of tracing that need no process: URL scrubbing, sampling, log lines, switch."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind

from holovitals_sync.telemetry import jobs, logs
from holovitals_sync.telemetry.sampling import EntryPoints
from holovitals_sync.telemetry.scrub import safe_url
from holovitals_sync.telemetry.setup import enabled


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        (
            "https://u:pw@ehr.example:8443/api/FHIR/R4/Observation?patient=8f2c-1&_count=100#f",
            "https://ehr.example:8443/api/FHIR/R4/Observation?patient=?&_count=?",
        ),
        (
            "http://127.0.0.1:9100/fhir/Patient/pt-00001/_history/2",
            "http://127.0.0.1:9100/fhir/Patient/{id}/_history/{id}",
        ),
        ("http://[::1]:80/fhir/Patient/$everything", "http://[::1]:80/fhir/Patient/$everything"),
        (
            "https://ehr/fhir/Patient?name=Smith&birthdate=1970-01-01",
            "https://ehr/fhir/Patient?name=?&birthdate=?",
        ),
        ("https://ehr/api/records/8f2c1e00-aa", "https://ehr/api/records/{id}"),
    ],
)
def test_urls_keep_their_shape_and_lose_ids_and_values(url: str, safe: str) -> None:
    assert safe_url(url) == safe


@pytest.mark.parametrize(
    ("kind", "decision"),
    [
        (SpanKind.SERVER, Decision.RECORD_AND_SAMPLE),
        (SpanKind.CONSUMER, Decision.RECORD_AND_SAMPLE),
        (SpanKind.PRODUCER, Decision.RECORD_AND_SAMPLE),
        (SpanKind.CLIENT, Decision.DROP),  # an idle worker's Redis polling
        (SpanKind.INTERNAL, Decision.DROP),
    ],
)
def test_traces_start_only_where_work_enters(kind: SpanKind, decision: Decision) -> None:
    assert EntryPoints().should_sample(None, 1, "x", kind).decision is decision


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
    ],
)
def test_tracing_is_on_only_when_a_collector_is_named(env: dict[str, str], on: bool) -> None:
    assert enabled(env) is on


def _logger(log_format: str) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.formatter(log_format))
    handler.addFilter(logs.TraceIds())
    logger = logging.getLogger(f"test-telemetry-{log_format}")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    return logger, out


def _in_a_job_and_a_span(emit: Any) -> tuple[str, str]:
    tracer = TracerProvider().get_tracer("test")  # not the global provider
    with (
        tracer.start_as_current_span("run") as span,
        jobs.job_span(SimpleNamespace(id="rq-42"), "q"),
    ):  # type: ignore[arg-type]
        emit()
        return format(span.get_span_context().trace_id, "032x"), "rq-42"


def test_json_log_lines_carry_the_trace_and_job_ids() -> None:
    logger, out = _logger("json")
    trace_id, job_id = _in_a_job_and_a_span(lambda: logger.warning("batch %s stored", 3))
    logger.warning("outside")
    inside, outside = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert inside["message"] == "batch 3 stored" and inside["level"] == "WARNING"
    assert (inside["trace_id"], inside["job_id"]) == (trace_id, job_id)
    assert len(inside["span_id"]) == 16
    assert "trace_id" not in outside and "job_id" not in outside


def test_text_log_lines_name_the_ids_only_when_there_are_some() -> None:
    logger, out = _logger("text")
    trace_id, _ = _in_a_job_and_a_span(lambda: logger.warning("inside"))
    logger.warning("outside")
    inside, outside = out.getvalue().splitlines()
    assert f"[trace={trace_id} job=rq-42]: inside" in inside
    assert outside.endswith("test-telemetry-text: outside")
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_spans_leave_without_exception_text_or_foreign_error_text() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    from holovitals_sync.telemetry.export import SafeExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SafeExporter(memory)))
    phi = "Failing row contains (pt-1, Alice Example, 1970-01-01)"
    foreign = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    with foreign.start_as_current_span("INSERT") as span:
        span.record_exception(ValueError(phi))
        span.set_status(Status(StatusCode.ERROR, phi))
    own = provider.get_tracer("holovitals_sync.jobs")
    with own.start_as_current_span("run") as span:
        span.set_status(Status(StatusCode.ERROR, "ServerError: HTTP 503"))
    sql, run = memory.get_finished_spans()
    assert sql.status.status_code is StatusCode.ERROR and not sql.status.description
    assert [e.attributes["exception.type"] for e in sql.events] == ["ValueError"]
    assert not any("exception.message" in (e.attributes or {}) for e in sql.events)
    assert phi not in repr([sql.attributes, sql.events, sql.status.description])
    assert run.status.description == "ServerError: HTTP 503"  # our own, safe text stays


def test_a_grpc_protocol_setting_is_named_in_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from holovitals_sync.telemetry import sdk

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with caplog.at_level(logging.WARNING, logger="holovitals_sync.telemetry.sdk"):
        sdk._warn_about_protocol()
    assert "only http/protobuf is supported" in caplog.text
    caplog.clear()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    sdk._warn_about_protocol()
    assert caplog.text == ""
