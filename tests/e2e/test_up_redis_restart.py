"""The private Redis of `up --demo` killed mid-sync (issue #11).

`up` starts that redis-server itself (no `HOLOVITALS_REDIS_URL`); when it dies, `up` starts
it again on the same socket. Workers and the dashboard's live updates reconnect, the running
job completes, and a queued job is not lost even when the restarted Redis has lost its data
(reconcile puts the row back on the queue).

These tests run on the session's shared `demo_app` (it uses the embedded Redis), after the
other browser tests (see tests/conftest.py): they leave it healthy, but a failure here could
leave it without Redis.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from holovitals_sync.services.demo import DEMO_NAME
from tests.e2e.conftest import WORKERS, DemoApp
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]  # fixture start-up included
LIVE = "#live:has-text('live')"
RESTARTED = "embedded-redis exited with code -9; restarting it"
FINISHED = {"completed", "failed", "cancelled"}
# Every text the live badge shows, and every status a job's row shows, as the DOM changes.
WATCH = """jobId => {
  window.__live = []; window.__status = []; window.__notReloaded = true;
  const push = (list, value) => { if (value && list[list.length - 1] !== value) list.push(value); };
  const note = () => {
    const live = document.querySelector('#live');
    push(window.__live, live && live.innerText.trim());
    const row = document.querySelector(`#job-row-${window.__jobId} .job-status`);
    push(window.__status, row && row.innerText);
  };
  window.__jobId = jobId;
  new MutationObserver(note).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
  note();
}"""


@pytest.fixture
def api(demo_app: DemoApp) -> Iterator[httpx.Client]:
    client = demo_app.api_client("operator")
    yield client
    client.close()


@pytest.fixture
def sandbox(demo_app: DemoApp) -> Iterator[str]:
    """The sandbox's admin origin; its faults are switched off again after the test."""
    origin = demo_app.fhir.removesuffix("/fhir")
    yield origin
    httpx.delete(f"{origin}/_sandbox/faults").raise_for_status()


def _slow_ehr(origin: str, latency_ms: int) -> None:
    if latency_ms:
        httpx.put(f"{origin}/_sandbox/faults", json={"latency_ms": latency_ms}).raise_for_status()
    else:
        httpx.delete(f"{origin}/_sandbox/faults").raise_for_status()


def _redis_pid(app: DemoApp) -> int | None:
    """The redis-server `up` runs for this data directory (a direct child of `up`)."""
    path = Path(f"/proc/{app.proc.pid}/task/{app.proc.pid}/children")
    for pid in path.read_text().split():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            continue
        if "redis-server" in cmdline and str(app.data) in cmdline and state != "Z":
            return int(pid)
    return None


def _private_redis(app: DemoApp) -> redis.Redis:
    return redis.Redis.from_url(app.redis_url, socket_timeout=2)


def _kill_redis(app: DemoApp, *, lose_data: bool = False) -> None:
    """SIGKILL the embedded redis-server and wait until `up` has started a new one.

    lose_data: also delete its append-only file before the restart (a Redis that keeps
    nothing, or a lost file), `up` held stopped meanwhile so it cannot restart Redis early.
    """
    old = _redis_pid(app)
    assert old, "up --demo runs no redis-server of its own"
    restarts = app.log.read_text().count(RESTARTED)
    if lose_data:
        os.kill(app.proc.pid, signal.SIGSTOP)
    try:
        os.kill(old, signal.SIGKILL)
        if lose_data:
            wait_for(lambda: Path(f"/proc/{old}/stat").read_text().split()[2] == "Z", 10)
            shutil.rmtree(app.data / "appendonlydir")
    finally:
        if lose_data:
            os.kill(app.proc.pid, signal.SIGCONT)
    # `up` noticed, said so, and started a redis-server on the same socket.
    wait_for(lambda: app.log.read_text().count(RESTARTED) > restarts, 20, 0.2)
    new = wait_for(_redis_pid_if_new(app, old), 20, 0.2)
    assert new != old
    wait_for(lambda: _ping(app), 20, 0.2)


def _redis_pid_if_new(app: DemoApp, old: int):
    return lambda: pid if (pid := _redis_pid(app)) not in (None, old) else None


def _ping(app: DemoApp) -> bool:
    with contextlib.suppress(redis.RedisError, OSError):
        return bool(_private_redis(app).ping())
    return False


def _demo_connection(api: httpx.Client) -> int:
    return next(c["id"] for c in api.get("/connections").json() if c["name"] == DEMO_NAME)


def _start(api: httpx.Client) -> int:
    response = api.post("/sync/jobs", json={"connection_id": _demo_connection(api),
                                            "job_type": "full"})  # fmt: skip
    response.raise_for_status()
    return response.json()["id"]


def _job(api: httpx.Client, job_id: int) -> dict:
    return api.get(f"/sync/jobs/{job_id}").json()


def _wait_jobs(api: httpx.Client, ids: list[int], timeout: float) -> list[dict]:
    def finished() -> list[dict] | None:
        jobs = [_job(api, job_id) for job_id in ids]
        return jobs if all(j["status"] in FINISHED for j in jobs) else None

    try:
        return wait_for(finished, timeout, 1)  # type: ignore[return-value]
    except AssertionError:
        pytest.fail(f"jobs never finished: {[_job(api, i) for i in ids]}")


def _wait_healthy(app: DemoApp, timeout: float) -> dict:
    """/api/health answers 200 with every worker of every family live again."""
    last: dict = {}

    def healthy() -> dict | None:
        nonlocal last
        try:
            response = httpx.get(f"{app.api}/health", timeout=5)
            last = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        workers = {f: q["workers"] for f, q in last.get("queues", {}).items()}
        return last if response.status_code == 200 and workers == WORKERS else None

    try:
        return wait_for(healthy, timeout, 1)  # type: ignore[return-value]
    except AssertionError:
        pytest.fail(f"health never recovered: {last}")


def _rq_job_id(app: DemoApp, job_id: int) -> str:
    with contextlib.closing(sqlite3.connect(app.data / "holovitals.db")) as db:
        return db.execute("SELECT rq_job_id FROM sync_job WHERE id = ?", (job_id,)).fetchone()[0]


def test_redis_killed_mid_sync_is_restarted_and_the_dashboard_goes_on(
    demo_app: DemoApp, page, api: httpx.Client, sandbox: str
):
    demo_app.sign_in(page, "admin", "/")
    page.wait_for_selector(LIVE, timeout=120_000)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    # Every EHR request takes 1.5 s: the sync (an export's kick-off, polls and files) runs
    # for ~20 s, so Redis dies while it is under way. Waiting for fetched > 0 instead came
    # too late: an export's resources all arrive at its end, a few seconds from completion.
    _slow_ehr(sandbox, 1500)
    running = _start(api)
    wait_for(lambda: _job(api, running)["status"] == "running", 60, 0.2)
    page.evaluate(WATCH, running)
    page.wait_for_function("window.__status.includes('running')", timeout=30_000)
    assert _job(api, running)["status"] == "running", "the sync ended before Redis was killed"

    _kill_redis(demo_app)
    _slow_ehr(sandbox, 0)

    # The job that was running when Redis died completes, and its row says so, live.
    (job,) = _wait_jobs(api, [running], 120)
    assert job["status"] == "completed", job
    page.wait_for_function("window.__status.at(-1) === 'completed'", timeout=30_000)
    # The tab noticed the outage and resubscribed.
    page.wait_for_selector(LIVE, timeout=30_000)
    assert "reconnecting…" in page.evaluate("window.__live")

    # A job started after the restart runs, and appears and finishes on the open page.
    fresh = _start(api)
    page.evaluate("id => { window.__jobId = id; window.__status = []; }", fresh)
    page.wait_for_function("window.__status.at(-1) === 'completed'", timeout=120_000)
    (job,) = _wait_jobs(api, [fresh], 30)
    assert job["status"] == "completed" and job["fetched"] > 0, job
    assert page.evaluate("window.__notReloaded") is True and navigations == []
    _wait_healthy(demo_app, 60)


def test_redis_restarted_without_its_data_loses_no_queued_job(
    demo_app: DemoApp, api: httpx.Client, sandbox: str
):
    # Two sync workers and a concurrency limit of two: the third job waits in Redis.
    _slow_ehr(sandbox, 1500)
    ids = [_start(api) for _ in range(3)]

    def two_running() -> list[str] | None:
        statuses = sorted(_job(api, i)["status"] for i in ids)
        return statuses if statuses == ["queued", "running", "running"] else None

    wait_for(two_running, 60, 0.2)
    waiting = next(i for i in ids if _job(api, i)["status"] == "queued")
    rq_id = _rq_job_id(demo_app, waiting)
    assert _private_redis(demo_app).exists(f"rq:job:{rq_id}")

    _kill_redis(demo_app, lose_data=True)
    _slow_ehr(sandbox, 0)
    assert not _private_redis(demo_app).exists(f"rq:job:{rq_id}"), "Redis kept its data"

    # The workers notice they were forgotten and register again.
    _wait_healthy(demo_app, 60)
    # Reconcile (run by the sync workers) finds the queued row unknown to RQ and re-enqueues
    # it once the enqueue grace has passed; every job completes.
    jobs = {j["id"]: j for j in _wait_jobs(api, ids, 150)}
    assert all(j["status"] == "completed" for j in jobs.values()), jobs
    assert "LostJob" in (jobs[waiting]["last_error"] or ""), jobs[waiting]
