"""Tracing on, as an operator meets it: a sync started from the dashboard is one trace, from
the click to the worker's requests to the EHR, and the job's page links that trace.

`up --demo` of its own, with OTEL_EXPORTER_OTLP_ENDPOINT naming an OTLP/HTTP collector on
loopback (tests/otlp.py) and HOLOVITALS_TRACE_URL naming a trace UI. It rebuilds the shared
.web directory, so it runs after the tests of the session's demo app (tests/conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from holovitals_sync.services.demo import read_demo_users
from tests.e2e.conftest import WORKERS, DemoApp, free_port, wait_ready
from tests.otlp import Collector, collector
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
TRACE_UI = "http://traces.example-hospital.org/trace/{trace_id}"
DEMO_NAME = "Sandbox EHR (demo)"
SERVER, CONSUMER, CLIENT = 2, 5, 3  # OTLP's SpanKind numbers


@pytest.fixture
def traced(tmp_path) -> Iterator[tuple[DemoApp, Collector]]:
    with collector() as otlp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HOLOVITALS_", "OTEL_"))}
        front, back, ehr = free_port(), free_port(), free_port()
        env.update(
            HOLOVITALS_DATA_DIR=str(tmp_path / "data"),
            HOLOVITALS_FRONTEND_PORT=str(front),
            HOLOVITALS_BACKEND_PORT=str(back),
            HOLOVITALS_SANDBOX_PORT=str(ehr),
            HOLOVITALS_MLLP_PORT=str(free_port()),
            HOLOVITALS_TRACE_URL=TRACE_UI,
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="200",
            **{f"HOLOVITALS_WORKERS_{family.upper()}": str(n) for family, n in WORKERS.items()},
        )
        (tmp_path / "no-reload").mkdir()
        env["REFLEX_HOT_RELOAD_OVERRIDE_PATHS"] = str(tmp_path / "no-reload")
        app = DemoApp(front, back, ehr, tmp_path / "data", tmp_path / "up.log", None, env=env)  # type: ignore[arg-type]
        app.start()
        try:
            wait_ready(app, 420)
            app.passwords = read_demo_users(app.data)
            yield app, otlp
        finally:
            if app.proc.poll() is None:
                app.proc.send_signal(signal.SIGTERM)
                try:
                    app.proc.wait(90)
                except subprocess.TimeoutExpired:
                    os.killpg(app.proc.pid, signal.SIGKILL)


def test_a_sync_started_in_the_dashboard_is_one_trace_linked_from_its_job_page(
    traced: tuple[DemoApp, Collector], page
) -> None:
    app, otlp = traced
    api = app.api_client("admin")
    before = {j["id"] for j in api.get("/sync/jobs", params={"limit": 200}).json()["items"]}
    app.sign_in(page, "operator", "/")
    page.click("#start-sync")
    page.click("#start-connection_id")
    page.get_by_role("option", name=DEMO_NAME).click()
    page.click("#start-job_type")
    page.get_by_role("option", name="incremental").click()
    page.click("#start-submit")
    page.locator("#start-sync-dialog").wait_for(state="detached")

    def started() -> dict | None:
        jobs = api.get("/sync/jobs", params={"limit": 200}).json()["items"]
        new = [j for j in jobs if j["id"] not in before and j["job_type"] == "incremental"]
        return new[0] if new else None

    job_id = wait_for(started, timeout=30)["id"]  # type: ignore[index]

    def finished() -> dict | None:
        job = api.get(f"/sync/jobs/{job_id}").json()
        return job if job["status"] == "completed" and job["trace_id"] else None

    job = wait_for(finished, timeout=180)
    assert isinstance(job, dict)
    trace_id = job["trace_id"]

    # The click, the enqueue, the wait, the run and its requests to the EHR: one trace.
    def whole() -> list | None:
        spans = otlp.trace(trace_id)
        runs = [s for s in spans if s.kind == CONSUMER]
        fhir = [s for s in spans if s.kind == CLIENT and "/fhir/" in str(s.attributes)]
        return spans if runs and fhir else None

    spans = wait_for(whole, timeout=60)
    assert isinstance(spans, list)
    roots = [s for s in spans if not s.parent_id]
    assert len(roots) == 1 and roots[0].kind == SERVER, [r.name for r in roots]
    assert roots[0].name == "ui StartSyncState.submit" and roots[0].service == "holovitals-sync-api"
    assert roots[0].attributes["holovitals.role"] == "operator"
    ids = {s.span_id for s in spans}
    assert all(s.parent_id in ids for s in spans if s.parent_id)
    assert {s.service for s in spans if s.kind == CONSUMER} == {"holovitals-sync-worker"}

    # The job's page shows the trace, as a link into the trace UI.
    page.click("#filter-type")
    page.get_by_role("option", name="incremental", exact=True).click()
    page.locator(f"#job-row-{job_id} .job-detail-button").click()
    link = page.locator("#detail-trace-link")
    link.wait_for()
    assert link.get_attribute("href") == TRACE_UI.replace("{trace_id}", trace_id)
    assert link.inner_text() == trace_id
    api.close()
