"""The sync dashboard in Debian's chromium against `up --demo`: live jobs, cancel/retry, detail,
and what a viewer is not given."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from holovitals_sync.services.demo import DEMO_NAME
from tests.e2e.conftest import SCREENSHOTS, DemoApp, screenshot
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
LIVE = "#live:has-text('live')"
# Records every status and fetched value each job row shows, by row id, as the DOM changes.
# Keyed by row: a scheduled job (another test gave a connection a cron) may start meanwhile
# and take the top row.
WATCH_ROWS = """() => {
  window.__seen = {};
  window.__notReloaded = true;
  const push = (list, value) => { if (list[list.length - 1] !== value) list.push(value); };
  const note = () => {
    for (const row of document.querySelectorAll('.job-row')) {
      const seen = window.__seen[row.id] ??= {status: [], fetched: [], percent: []};
      push(seen.status, row.querySelector('.job-status').innerText);
      push(seen.fetched, row.querySelector('.counter-fetched').innerText);
      push(seen.percent, row.querySelector('.job-progress').dataset.percent);
    }
  };
  new MutationObserver(note).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def _dialog_shot(dialog, name: str) -> None:
    """A dialog on its own: a full-page shot would cut it at the viewport's fold."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    dialog.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _overlap(a: dict | None, b: dict | None) -> bool:
    """Whether two bounding boxes share any pixel."""
    assert a is not None and b is not None
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def _row_status(page, row_id: str, status: str, timeout: float = 120_000) -> None:
    page.wait_for_function(
        "([id, s]) => { const b = document.querySelector(`#${id} .job-status`);"
        " return b && b.innerText === s; }", arg=[row_id, status], timeout=timeout)  # fmt: skip


@pytest.fixture
def api(demo_app: DemoApp) -> Iterator[httpx.Client]:
    client = demo_app.api_client("operator")  # already open: it has signed in
    yield client
    client.close()


def _demo_connection(api: httpx.Client) -> int:
    return next(c["id"] for c in api.get("/connections").json() if c["name"] == DEMO_NAME)


def _slow_ehr(demo_app: DemoApp, latency_ms: int) -> None:
    """Every FHIR call of the sandbox answers after `latency_ms` (0 switches it off)."""
    origin = demo_app.fhir.removesuffix("/fhir")
    if latency_ms:
        httpx.put(f"{origin}/_sandbox/faults", json={"latency_ms": latency_ms}).raise_for_status()
    else:
        httpx.delete(f"{origin}/_sandbox/faults").raise_for_status()


def _wait_job(api: httpx.Client, job_id: int, statuses: set[str]) -> dict:
    def done() -> dict | None:
        job = api.get(f"/sync/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    return wait_for(done, timeout=180, interval=0.5)


def _job_that_wrote(api: httpx.Client, at_least: int) -> dict:
    """A completed job that created records (a full sync, run now if none has run yet).

    Records a job fetched unchanged keep pointing at the job that last wrote them.
    """
    done = api.get("/sync/jobs", params={"status": "completed", "limit": 200}).json()["items"]
    wrote = [j for j in done if j["created"] + j["updated"] >= at_least]
    if wrote:
        return wrote[0]
    job = api.post(
        "/sync/jobs", json={"connection_id": _demo_connection(api), "job_type": "full"}
    ).json()
    return _wait_job(api, job["id"], {"completed"})


def _started_full_job(api: httpx.Client, before: set[int]) -> int:
    """The id of the full sync the dialog just started (not in `before`)."""

    def started() -> int | None:
        jobs = api.get("/sync/jobs", params={"limit": 200}).json()["items"]
        new = [j["id"] for j in jobs if j["id"] not in before and j["job_type"] == "full"]
        return max(new, default=None)

    return wait_for(started, timeout=30, interval=0.3)


def test_start_full_sync_and_watch_it_finish_without_reload(
    demo_app: DemoApp, page, api: httpx.Client
):
    demo_app.sign_in(page, "admin", "/")
    page.wait_for_selector(LIVE, timeout=120_000)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    before = {j["id"] for j in api.get("/sync/jobs", params={"limit": 200}).json()["items"]}
    page.evaluate(WATCH_ROWS)

    page.click("#start-sync")
    page.click("#start-submit")  # nothing chosen yet: the field says what is missing
    assert page.locator("#start-error-connection_id").inner_text() == "Choose a connection."
    page.click("#start-connection_id")
    page.get_by_role("option", name=DEMO_NAME).click()
    page.click("#start-job_type")
    page.get_by_role("option", name="resource").click()
    page.fill("#start-resource_type", "not a type")
    page.click("#start-submit")
    page.locator("#start-error-resource_type").wait_for()
    assert "FHIR resource type" in page.locator("#start-error-resource_type").inner_text()
    _dialog_shot(page.locator("#start-sync-dialog"), "start-sync-dialog")

    page.click("#start-job_type")
    page.get_by_role("option", name="full").click()
    page.click("#start-submit")
    page.locator("#start-sync-dialog").wait_for(state="detached")
    # The confirmation stays clear of what one looks at next: the button and the live badge.
    toast = page.locator("[data-sonner-toast]", has_text="queued")
    toast.wait_for()
    for control in ("#start-sync", "#live"):
        assert not _overlap(toast.bounding_box(), page.locator(control).bounding_box()), control
    row = f"job-row-{_started_full_job(api, before)}"
    _row_status(page, row, "completed", timeout=180_000)
    page.wait_for_selector(f"#{row} .job-progress[data-percent='100']")

    seen = page.evaluate("window.__seen")[row]
    assert page.evaluate("window.__notReloaded") is True and navigations == []
    assert "running" in seen["status"] and seen["status"][-1] == "completed"
    assert int(seen["fetched"][-1]) > 0 and len(seen["fetched"]) >= 2
    assert seen["percent"][-1] == "100"
    # The cards follow the events too (re-read on the job's completion, no reload).
    page.wait_for_function("document.querySelector('#records-today .rt-Heading').innerText !== '0'")
    screenshot(page, "dashboard-jobs")


def test_cancel_then_retry_from_the_jobs_tab(demo_app: DemoApp, page, api: httpx.Client):
    _slow_ehr(demo_app, 1500)  # long enough to press Cancel while the job is still going
    try:
        job = api.post(
            "/sync/jobs", json={"connection_id": _demo_connection(api), "job_type": "incremental"}
        ).json()
        demo_app.sign_in(page, "operator", "/")
        page.wait_for_selector(LIVE, timeout=120_000)
        row = page.locator(f"#job-row-{job['id']}")
        row.locator(".job-cancel").click()
        row.locator(".job-status", has_text="cancelled").wait_for(timeout=60_000)
        assert row.locator(".job-cancel").count() == 0
        assert _wait_job(api, job["id"], {"cancelled"})["status"] == "cancelled"
    finally:
        _slow_ehr(demo_app, 0)
    row.locator(".job-retry").click()
    # Retried from its checkpoint, it runs to the end while the page watches.
    row.locator(".job-status", has_text="completed").wait_for(timeout=180_000)
    assert row.locator(".job-retry").count() == 0
    # Both were done by the signed-in operator, and audited as such.
    admin = demo_app.api_client("admin")
    entries = admin.get("/audit", params={"limit": 500}).json()["items"]
    admin.close()
    mine = {(e["action"], e["actor"]) for e in entries if e["target_id"] == str(job["id"])}
    assert {("sync_job.cancel", "operator"), ("sync_job.retry", "operator")} <= mine


def test_job_detail_shows_timeline_counters_and_records(demo_app: DemoApp, page, api: httpx.Client):
    job = _job_that_wrote(api, at_least=11)
    demo_app.sign_in(page, "viewer", "/")
    page.wait_for_selector(LIVE, timeout=120_000)
    # The demo's clinic day queues a patient sync per admission, so the full sync may be on
    # a later page: narrow the list by type, as a user looking for it would.
    page.click("#filter-type")
    page.get_by_role("option", name=job["job_type"], exact=True).click()
    page.locator(f"#job-row-{job['id']} .job-detail-button").click()
    dialog = page.locator("#job-detail")
    dialog.wait_for()
    assert f"#{job['id']}" in dialog.inner_text()
    timeline = page.locator("#job-timeline").inner_text()
    # One wording, read as sentences: who asked for it once, then what happened.
    assert "Requested" in timeline and "Started" in timeline and "Finished: completed" in timeline
    assert timeline.count("Requested") == 1 and "start by" not in timeline
    records = page.locator("#job-records tbody tr")
    assert records.count() == 10  # one page of what it touched
    first_type = records.first.inner_text().split("\t")[0]
    assert re.fullmatch(r"[A-Z][A-Za-z]+", first_type)  # resource type and ids, no bodies
    page.locator("#job-detail button", has_text="Next").click()
    page.wait_for_function("document.querySelector('#job-detail').innerText.includes('11–')")
    _dialog_shot(dialog, "job-detail")


def test_viewer_gets_no_control_that_changes_anything(demo_app: DemoApp, page, api: httpx.Client):
    job = api.post(
        "/sync/jobs",
        json={"connection_id": _demo_connection(api), "job_type": "incremental", "priority": "low"},
    ).json()
    api.post(f"/sync/jobs/{job['id']}/cancel")  # a cancelled job offers Retry to operators
    demo_app.sign_in(page, "viewer", "/")
    page.wait_for_selector(LIVE, timeout=120_000)
    row = page.locator(f"#job-row-{job['id']}")
    row.locator(".job-status", has_text="cancelled").wait_for()
    assert page.locator("#start-sync").count() == 0
    assert page.locator(".job-cancel").count() == 0 and page.locator(".job-retry").count() == 0
    assert row.locator(".job-detail-button").count() == 1  # looking is allowed
    assert page.locator("#user-role").inner_text() == "viewer"
    assert re.search(r"/$", page.url)


def _disabled_subscription(demo_app: DemoApp, name: str = "e2e failing receiver") -> int:
    """A webhook subscription switched off after failed deliveries, written into the
    product's database: the workers' alert evaluation finds it and raises a real alert."""
    from sqlmodel import Session

    from holovitals_sync.db import create_db_engine
    from holovitals_sync.models import WebhookSubscription

    engine = create_db_engine(f"sqlite:///{demo_app.data / 'holovitals.db'}")
    try:
        with Session(engine) as session:
            sub = WebhookSubscription(name=name, url="https://192.0.2.1/hook",
                                      secret_encrypted="unused: never delivered",
                                      event_types=["sync.completed"], active=False,
                                      failure_streak=6)  # fmt: skip
            session.add(sub)
            session.commit()
            return int(sub.id)
    finally:
        engine.dispose()


def test_alert_banner_appears_live_and_operator_acknowledges(demo_app: DemoApp, page, browser):
    demo_app.sign_in(page, "operator", "/")
    page.wait_for_selector(LIVE, timeout=120_000)
    page.evaluate("window.__notReloaded = true")
    name = f"Failing receiver {uuid.uuid4().hex[:6]}"  # no other test's name in it
    _disabled_subscription(demo_app, name)
    what = f"Webhook subscription “{name}” switched off"  # its name, not its number
    banner = page.locator("#alerts-banner", has_text=what)
    banner.wait_for(timeout=90_000)  # raised by the workers, pushed over the websocket
    assert page.evaluate("window.__notReloaded")

    page.click("#nav-alerts")
    page.wait_for_url(re.compile("/alerts$"))
    row = page.locator(".alert-row", has_text=what)
    row.locator(".alert-ack").click()
    row.wait_for(state="detached")  # the list shows open alerts: it has left it
    page.click("#alerts-filter")
    page.get_by_role("option", name="acknowledged").click()
    assert "by operator" in row.inner_text()

    viewer = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    other_name = f"Pharmacy feed {uuid.uuid4().hex[:6]}"
    _disabled_subscription(demo_app, other_name)
    other = f"Webhook subscription “{other_name}” switched off"
    demo_app.sign_in(viewer, "viewer", "/alerts")
    viewer.locator(".alert-row", has_text=other).wait_for(timeout=90_000)
    assert viewer.locator(".alert-ack").count() == 0
    viewer.context.close()


# Every state the health cards show, and the connection banner, in sessionStorage: it
# outlives a reload of the page by Reflex's dev client after the backend came back.
WATCH_HEALTH = """(() => {
  const push = value => {
    const seen = JSON.parse(sessionStorage.getItem('__health') || '[]');
    if (seen[seen.length - 1] !== value) {
      seen.push(value);
      sessionStorage.setItem('__health', JSON.stringify(seen));
    }
  };
  const note = () => {
    for (const part of ['database', 'redis']) {
      const badge = document.querySelector(`#health-${part} .rt-Badge`);
      if (badge) push(`${part}:${badge.innerText.trim()}`);
    }
    if (document.querySelector('#connection-lost')) push('lost');
  };
  new MutationObserver(note).observe(document,
    {subtree: true, childList: true, characterData: true});
})()"""


def _reflex_pid(demo_app: DemoApp) -> int:
    """The `reflex run` child of `up` (UI dev server and backend, in its own process group)."""
    from pathlib import Path

    pid = demo_app.proc.pid
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        if b"reflex" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    raise AssertionError("no reflex child")


def test_dashboard_comes_back_live_after_the_backend_dies(
    demo_app: DemoApp, page, api: httpx.Client
):
    """Last in this file: it restarts the shared app's Reflex process."""
    import os
    import signal

    page.add_init_script(WATCH_HEALTH)  # in this document and any the page reloads into
    demo_app.sign_in(page, "viewer", "/")
    page.wait_for_selector(LIVE, timeout=120_000)
    os.killpg(_reflex_pid(demo_app), signal.SIGKILL)  # `up` starts it again
    page.wait_for_selector("#live:has-text('reconnecting')", timeout=60_000)
    # Said plainly: the server is away; nothing blames the database or Redis meanwhile.
    page.wait_for_selector("#connection-lost", timeout=60_000)
    # No reload by the test: the page reconnects (the dev server's client may reload it
    # itself), on_load runs again and a fresh watcher subscribes.
    page.wait_for_selector(LIVE, timeout=300_000)
    page.wait_for_function("document.querySelector('#health-database').innerText.includes('up')")
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('__health') || '[]')")
    assert not [s for s in seen if s.endswith(":down")], seen  # both were up all along
    assert "lost" in seen and any(
        s.endswith(":unknown") or s.endswith(":checking…") for s in seen
    ), seen
    job = api.post(
        "/sync/jobs",
        json={
            "connection_id": _demo_connection(api),
            "job_type": "resource",
            "resource_type": "Condition",
        },
    ).json()
    page.locator(f"#job-row-{job['id']} .job-status", has_text="completed").wait_for(
        timeout=180_000
    )
    assert "reflex exited with code" in demo_app.log.read_text()
