"""One sync is one trace across processes, exported to a collector, with no PHI in it.

Real parts: the API in its own uvicorn process, `rq worker` processes for the sync and
webhooks queues, the sandbox EHR over HTTP, a subscriber endpoint, and an OTLP/HTTP
collector on loopback that decodes what the processes export (tests/otlp.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlmodel import Session, select

from holovitals_sync.config import audit_key, get_settings, secret_key
from holovitals_sync.db import session_scope
from holovitals_sync.models import EHRConnection, Role, SyncedRecord
from holovitals_sync.sandbox.config import DEMO_CLIENT_SECRET
from holovitals_sync.sandbox.server import SandboxServer
from tests.factories import make_connection, make_subscription, make_token, make_user
from tests.integration.webhooks.conftest import Receiver, Workers, free_port
from tests.otlp import Collector, collector
from tests.waiting import wait_for

pytestmark = [pytest.mark.redis]

CONSUMER, PRODUCER, SERVER, CLIENT = 5, 4, 2, 3  # OTLP's SpanKind numbers
DELIVER = "workers.webhook_jobs.deliver"


@pytest.fixture
def otlp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    """A collector, named to every process started after this (not to this one)."""
    with collector() as found:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", found.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # export within 0.2 s
        monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        yield found


@pytest.fixture
def api_process(wh_db: str, otlp: Collector, tmp_path: Path) -> Iterator[str]:
    """`create_api()` served by uvicorn in a process of its own, as Reflex serves it."""
    port = free_port()
    argv = [str(Path(sys.executable).parent / "uvicorn"), "--factory",
            "holovitals_sync.api:create_api", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"]  # fmt: skip
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115 - closed after the process
    proc = subprocess.Popen(argv, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), timeout=30)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health/live", timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def _http(span, new: str, old: str) -> object:
    """An HTTP attribute under either naming (the instrumentations' semconv setting)."""
    return span.attributes.get(new, span.attributes.get(old))


def _sync_one_patient(api: str, token: str, connection_id: int, patient: str) -> dict:
    created = httpx.post(
        f"{api}/api/sync/jobs",
        headers={"Authorization": f"Bearer {token}"},
        json={"connection_id": connection_id, "job_type": "patient", "patient_id": patient},
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]

    def finished() -> dict | None:
        job = httpx.get(
            f"{api}/api/sync/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}
        ).json()
        return job if job["status"] in ("completed", "failed") else None

    job = wait_for(finished, timeout=90)
    assert isinstance(job, dict) and job["status"] == "completed", job
    return job


def _sandbox_connection(session: Session, name: str, sandbox: SandboxServer) -> EHRConnection:
    """A connection to the sandbox EHR as its demo client."""
    return make_connection(
        session,
        name,
        base_url=sandbox.base_url,
        client_id="holovitals-demo",
        client_secret=DEMO_CLIENT_SECRET,
        scopes="system/*.read system/*.write",
    )


def _phi(patient_ids: set[str]) -> set[str]:
    """What must never be in a span: the synced patients' names and birth dates."""
    found: set[str] = set()
    with session_scope() as session:
        for record in session.exec(select(SyncedRecord)).all():
            body = record.remote_body or {}
            if body.get("birthDate"):
                found.add(body["birthDate"])
            for name in body.get("name") or []:
                found |= {n for n in [name.get("family"), *(name.get("given") or [])] if n}
    found |= patient_ids
    return {value for value in found if len(value) >= 4}


def test_a_sync_is_one_trace_from_the_api_call_to_the_ehr_and_the_webhook(
    wh_db: str, otlp: Collector, api_process: str, workers: Workers, receiver: Receiver, sandbox
) -> None:
    patient = "pt-00001"
    with session_scope() as session:
        connection = _sandbox_connection(session, "Traced", sandbox)
        make_subscription(session, receiver.url, event_types=["patient.created"])
        token = make_token(session, make_user(session, "traced-operator", Role.OPERATOR))
        connection_id = connection.id
    workers.start(1)

    job = _sync_one_patient(api_process, token, connection_id, patient)
    trace_id = job["trace_id"]
    assert trace_id and len(trace_id) == 32

    # The API call, the queue, the run, the EHR's answers, the delivery: one trace.
    def whole() -> list | None:
        spans = otlp.trace(trace_id)
        names = {s.name for s in spans}
        delivered = [
            s
            for s in spans
            if s.kind == CONSUMER and s.attributes.get("rq.job.function") == DELIVER
        ]
        done = "POST /api/sync/jobs" in names and "sync.batch" in names and delivered
        return spans if done else None

    spans = wait_for(whole, timeout=60)
    assert isinstance(spans, list)
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if not s.parent_id]
    assert [r.name for r in roots] == ["POST /api/sync/jobs"], [r.name for r in roots]
    assert roots[0].service == "holovitals-sync-api" and roots[0].kind == SERVER
    orphans = [s.name for s in spans if s.parent_id and s.parent_id not in by_id]
    assert not orphans, orphans  # every span hangs from the API call, across processes

    runs = [s for s in spans if s.kind == CONSUMER]
    assert {s.service for s in runs} == {"holovitals-sync-worker"}
    sync_run = next(
        s for s in runs if s.attributes["rq.job.function"] == "workers.jobs.run_sync_job"
    )
    assert by_id[sync_run.parent_id].kind == PRODUCER  # the enqueue, in the API process
    assert by_id[sync_run.parent_id].service == "holovitals-sync-api"
    assert sync_run.attributes["holovitals.job_id"] == job["id"]
    assert sync_run.attributes["holovitals.connection_id"] == connection_id
    assert any(s.name.startswith("wait in sync.") for s in spans)
    batches = [s for s in spans if s.name == "sync.batch"]
    assert all(s.attributes["holovitals.resources"] > 0 for s in batches)
    types = {t for s in batches for t in s.attributes["holovitals.resource_types"].split(",")}
    assert "Patient" in types

    fhir = [
        s for s in spans if s.kind == CLIENT and "/fhir/" in str(_http(s, "url.full", "http.url"))
    ]
    assert fhir, (
        "the EHR requests are spans of the trace",
        [s.attributes for s in spans if s.kind == CLIENT],
    )
    assert all(_http(s, "http.response.status_code", "http.status_code") == 200 for s in fhir)
    assert all(patient not in s.text() for s in fhir)  # ids in URLs are cut

    # The database and Redis work of the run, as statements without their values.
    statements = [s.attributes.get("db.statement") for s in spans if s.parent_id]
    systems = {s.attributes.get("db.system") for s in spans}
    assert {"redis"} <= systems and systems & {"sqlite", "postgresql"}, systems
    assert any(str(q).startswith("INSERT") for q in statements)

    # The delivery the sync caused runs in a webhooks worker, in the same trace, and the
    # subscriber receives the trace context (W3C traceparent).
    delivery = next(s for s in runs if s.attributes["rq.job.function"] == DELIVER)
    calls = [
        _http(s, "http.request.method", "http.method")
        for s in spans
        if s.kind == CLIENT and s.parent_id == delivery.span_id
    ]
    assert [c for c in calls if c] == ["POST"]  # the delivery, among its SQL and Redis spans
    delivered = wait_for(lambda: receiver.requests, timeout=30)
    assert trace_id in delivered[0].headers.get("traceparent", "")

    # No PHI and no secret in anything exported, from any process.
    settings = get_settings()
    keys = {secret_key(settings).decode(), audit_key(settings).decode("latin-1")}
    secrets = {DEMO_CLIENT_SECRET, token, "whsec_factory", *keys}
    phi = _phi({patient})
    assert len(phi) >= 3, phi  # a name, a birth date, the id: the scan has something to find
    leaks = [(s.name, value) for s in otlp.spans for value in phi | secrets if value in s.text()]
    assert not leaks, leaks
    assert {"holovitals-sync-api", "holovitals-sync-worker"} <= {s.service for s in otlp.spans}

    # Metrics go to the same collector: the API's requests and the workers' EHR requests.
    wanted = ({"http.server.duration", "http.server.request.duration"},
              {"http.client.duration", "http.client.request.duration"})  # fmt: skip
    assert wait_for(lambda: all(otlp.metric_names & names for names in wanted), timeout=30)


def test_a_retried_job_is_a_second_run_in_the_same_trace(
    wh_db: str,
    otlp: Collector,
    api_process: str,
    workers: Workers,
    sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The EHR fails the first attempt; RQ's retry runs in the trace the call started, and
    the worker's log line about the failure names the trace and the RQ job (JSON lines)."""
    monkeypatch.setenv("HOLOVITALS_LOG_FORMAT", "json")  # for the workers started below
    patient = "pt-00002"
    with session_scope() as session:
        connection = _sandbox_connection(session, "Retried", sandbox)
        token = make_token(session, make_user(session, "retry-operator", Role.OPERATOR))
        connection_id = connection.id
    sandbox.set_faults(storm=6, retry_after=0.1)  # more 429s than the client's own retries
    workers.start(1)
    job = _sync_one_patient(api_process, token, connection_id, patient)
    assert job["attempts"] >= 2

    def two_runs() -> list | None:
        runs = [
            s
            for s in otlp.trace(job["trace_id"])
            if s.kind == CONSUMER and s.attributes["rq.job.function"] == "workers.jobs.run_sync_job"
        ]
        return runs if len(runs) >= 2 else None

    runs = wait_for(two_runs, timeout=30)
    assert isinstance(runs, list)
    failed = [r for r in runs if r.status_code == 2]  # STATUS_CODE_ERROR
    assert failed and "429" in failed[0].status_message

    lines = [orjson.loads(line) for line in workers.logs().splitlines() if line.startswith("{")]
    about = [
        line for line in lines if line.get("job_id") == failed[0].attributes["messaging.message.id"]
    ]
    assert about and all(line["trace_id"] == job["trace_id"] for line in about), lines
    assert any(line["level"] == "WARNING" and "failed" in line["message"] for line in about)
    assert {"holovitals.job.duration"} <= otlp.metric_names  # the worker's job metrics


def test_an_ehr_notification_is_linked_to_the_processing_and_the_sync_it_caused(
    wh_db: str, otlp: Collector, api_process: str, workers: Workers, sandbox
) -> None:
    """Notifications are stored by group commit and processed together: the processing
    starts a trace of its own, linked to each notification's request."""
    with session_scope() as session:
        connection_id = _sandbox_connection(session, "Notifying", sandbox).id
        admin = make_token(session, make_user(session, "notify-admin", Role.ADMIN))
    answer = httpx.put(
        f"{api_process}/api/connections/{connection_id}/inbound-auth",
        json={"auth": "holovitals_hmac"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert answer.status_code == 200, answer.text
    inbound = f"{api_process}/api/webhooks/inbound/{connection_id}"
    sent = sandbox.notify(
        inbound,
        answer.json()["secret"],
        kind="event-notification",
        payload="id-only",
        resource="Patient/pt-00003",
        signature_style="holovitals",
    )
    assert sent["status"] == 202, sent
    workers.start(1)

    def request_span() -> object:
        return next(
            (
                s
                for s in otlp.spans
                if s.kind == SERVER and "/api/webhooks/inbound/" in repr(s.attributes)
            ),
            None,
        )

    request = wait_for(request_span, timeout=30)

    def linked_run() -> list | None:
        enqueues = [s for s in otlp.spans if (request.trace_id, request.span_id) in s.links]
        if not enqueues:
            return None
        spans = otlp.trace(enqueues[0].trace_id)
        runs = {s.attributes.get("rq.job.function") for s in spans if s.kind == CONSUMER}
        return spans if "workers.jobs.run_sync_job" in runs else None

    spans = wait_for(linked_run, timeout=60)
    assert isinstance(spans, list)
    roots = [s for s in spans if not s.parent_id]
    assert len(roots) == 1 and roots[0].kind == PRODUCER  # the enqueue of the stored group
    assert roots[0].service == "holovitals-sync-api"
    assert "pt-00003" not in repr([s.text() for s in spans] + [request.text()])


def test_tracing_off_is_free_nothing_is_started_or_wrapped(wh_db: str) -> None:
    """Without a collector named, the API and a worker start no tracer provider, no export
    thread, and wrap no HTTP, SQL or Redis call. (redis-py imports the SDK by itself when it
    is installed; importing is not running.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    code = (
        "import threading, httpx, workers.settings, workers.worker\n"
        "from opentelemetry import trace\n"
        "from holovitals_sync.api import create_api\n"
        "from holovitals_sync import telemetry\n"
        "create_api()\n"
        "print(telemetry.started(), type(trace.get_tracer_provider()).__name__,\n"
        "      hasattr(httpx.HTTPTransport.handle_request, '__wrapped__'),\n"
        "      sorted(t.name for t in threading.enumerate() if 'Otel' in t.name))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[-2] == "False ProxyTracerProvider False []"
