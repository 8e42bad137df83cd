"""The dashboard's rough edges (issue #21) in Debian's chromium at 1280x800 against `up --demo`.

Each check is one a tester's screenshot showed failing: the Conflicts tab and the delivery
log not following changes until a reload, the page scrolling sideways with a job's Cancel
button and the alert banner, the throughput chart's clipped and uneven axis, dialogs whose
buttons sat below the window, and inputs a viewer cannot use.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session, select

from holovitals_sync.db import create_db_engine
from holovitals_sync.models import SyncJob
from holovitals_sync.models.types import utcnow
from holovitals_sync.services.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_NAME
from holovitals_sync.services.orchestration.lifecycle import ACTIVE
from holovitals_sync.ui.views import dashboard
from tests.e2e.conftest import DemoApp, screenshot
from tests.e2e.test_conflicts_ui import _edit_at_sandbox, _edit_locally, _sync
from tests.e2e.test_dashboard import _disabled_subscription
from tests.e2e.test_webhooks_ui import _Receiver
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
WAIT = 120_000
LIVE = "#live:has-text('live')"
WIDTH, HEIGHT = 1280, 800
# Every navigation of the page: a live update must not come from a reload.
NO_RELOAD = "window.__notReloaded = true"


@pytest.fixture
def api(demo_app: DemoApp) -> Iterator[httpx.Client]:
    with closing(demo_app.api_client("operator")) as client:
        yield client


def _demo_connection(api: httpx.Client) -> int:
    return next(c["id"] for c in api.get("/connections").json() if c["name"] == DEMO_NAME)


def _slow_ehr(demo_app: DemoApp, latency_ms: int) -> None:
    origin = demo_app.fhir.removesuffix("/fhir")
    if latency_ms:
        httpx.put(f"{origin}/_sandbox/faults", json={"latency_ms": latency_ms}).raise_for_status()
    else:
        httpx.delete(f"{origin}/_sandbox/faults").raise_for_status()


def _make_conflict(demo_app: DemoApp, api: httpx.Client) -> str:
    """A real stale-write conflict on one demo patient (see test_conflicts_ui); its patient."""
    connection_id = _demo_connection(api)
    local, remote = (
        f"{y}-0{n}-1{n}" for n, y in enumerate(random.sample(range(1900, 2000), 2), start=1)
    )
    _sync(api, connection_id, "inbound")
    patient_id = _edit_locally(demo_app, connection_id, local)
    _edit_at_sandbox(demo_app.fhir, patient_id, remote)
    _sync(api, connection_id, "bidirectional")
    return patient_id


def _open_conflicts(api: httpx.Client) -> int:
    return len(api.get("/sync/conflicts", params={"status": "open", "limit": 200}).json()["items"])


# -- 1. lists and cards follow changes live -------------------------------------------------


def test_conflicts_tab_and_card_show_a_new_conflict_without_reload(
    demo_app: DemoApp, page: Page, api
) -> None:
    demo_app.sign_in(page, "operator", "/")
    page.wait_for_selector(LIVE, timeout=WAIT)
    page.click("#tab-conflicts")
    before = page.locator(".conflict-row").count()
    medium = page.locator("#open-conflicts").inner_text()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate(NO_RELOAD)

    patient = _make_conflict(demo_app, api)  # by the workers, while the page stays open

    row = page.locator(".conflict-row", has_text=f"Patient/{patient}")
    expect(row).to_be_visible(timeout=30_000)
    assert page.locator(".conflict-row").count() == min(before + 1, 15)
    expect(row).to_contain_text("The EHR changed the record after we read it")
    # The card counts it too, from the same notice.
    expect(page.locator("#open-conflicts")).not_to_have_text(medium, timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True and navigations == []


@pytest.fixture
def receiver() -> Iterator[str]:
    from http.server import ThreadingHTTPServer
    from threading import Thread

    handler = type("Receiver", (_Receiver,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_delivery_log_follows_a_sync_without_reload(
    demo_app: DemoApp, page: Page, api, receiver: str
) -> None:
    demo_app.sign_in(page, "viewer", "/")
    page.wait_for_selector(LIVE, timeout=WAIT)
    page.click("#tab-webhooks")
    page.evaluate(NO_RELOAD)
    name = f"Live board {uuid.uuid4().hex[:6]}"
    created = api.post(
        "/sync/webhooks", json={"name": name, "url": receiver, "event_types": ["sync.completed"]}
    )
    created.raise_for_status()
    try:
        # The new subscription appears (a change notice), then its delivery once a sync ends.
        expect(page.locator(".webhook-row", has_text=name)).to_be_visible(timeout=30_000)
        _sync(api, _demo_connection(api), "inbound")
        delivery = page.locator(".delivery-row", has_text=name)
        expect(delivery.first).to_contain_text("delivered", timeout=60_000)
        expect(delivery.first).to_contain_text("sync.completed")
        assert page.evaluate("window.__notReloaded") is True
    finally:
        api.delete(f"/sync/webhooks/{created.json()['id']}")


# -- 2. no page scrolls sideways ---------------------------------------------------------


def _long_named_connection(demo_app: DemoApp) -> tuple[int, str]:
    """A second connection to the sandbox whose name is as long as a name may be."""
    name = "Zz" + "StMarysRegionalMedicalCenterNorthCampusCardiologyOutpatient" * 3
    name = name[:200]
    with closing(demo_app.api_client("admin")) as admin:
        found = [c for c in admin.get("/connections").json() if c["name"] == name]
        if found:
            return found[0]["id"], name
        created = admin.post(
            "/connections",
            json={
                "name": name,
                "vendor": "generic",
                "base_url": demo_app.fhir,
                "client_id": DEMO_CLIENT_ID,
                "auth_method": "client_secret_basic",
                "client_secret": DEMO_CLIENT_SECRET,
                "status": "active",
            },
        )
        created.raise_for_status()
        return created.json()["id"], name


def _scroll_width(page: Page) -> int:
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    )


def _inside_window(page: Page, selector: str) -> None:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH + 0.5, (selector, box)


def test_no_page_scrolls_sideways_with_buttons_long_names_and_the_banner(
    demo_app: DemoApp, page: Page, api
) -> None:
    connection_id, name = _long_named_connection(demo_app)
    wide = api.post(
        "/sync/webhooks",
        json={
            "name": "W" * 200,
            "url": "https://93.184.215.14/" + "hook/" * 100,
            "event_types": ["patient.updated"],
        },
    )
    wide.raise_for_status()
    _disabled_subscription(demo_app, f"Long receiver {'x' * 150}")
    _slow_ehr(demo_app, 3000)  # long enough for both jobs to show Cancel
    jobs = [
        api.post("/sync/jobs", json={"connection_id": cid, "job_type": "incremental"}).json()["id"]
        for cid in (_demo_connection(api), connection_id)
    ]
    try:
        demo_app.sign_in(page, "operator", "/")
        page.wait_for_selector(LIVE, timeout=WAIT)
        expect(page.locator(f"#job-row-{jobs[0]} .job-cancel")).to_be_visible(timeout=WAIT)
        expect(page.locator(f"#job-row-{jobs[1]}")).to_contain_text(name[:20])
        # The workers raise the alert for the long-named subscription; its line is the newest.
        expect(page.locator("#alerts-banner", has_text="Long receiver")).to_be_visible(timeout=WAIT)
        assert _scroll_width(page) <= WIDTH
        for selector in ("#alerts-banner", f"#job-row-{jobs[0]} .job-cancel", "#start-sync"):
            _inside_window(page, selector)
        screenshot(page, "rough-edges-dashboard")
        for tab in ("#tab-webhooks", "#tab-conflicts"):
            page.click(tab)
            assert _scroll_width(page) <= WIDTH, tab
    finally:
        for job_id in jobs:
            cancelled = api.post(f"/sync/jobs/{job_id}/cancel")
            assert cancelled.status_code in (200, 409), cancelled.text  # 409: it had finished
        _slow_ehr(demo_app, 0)

    for path in ("/connections", "/webhooks", "/conflicts", "/records", "/audit", "/alerts"):
        page.goto(f"{demo_app.url}{path}")
        expect(page.locator("#page-title")).to_be_visible(timeout=WAIT)
        page.wait_for_timeout(1500)  # the page's lists arrive after the frame
        assert _scroll_width(page) <= WIDTH, path
    page.goto(f"{demo_app.url}/connections?id={connection_id}")
    expect(page.locator("#detail-name")).to_have_text(name, timeout=WAIT)
    assert _scroll_width(page) <= WIDTH
    api.delete(f"/sync/webhooks/{wide.json()['id']}").raise_for_status()


# -- 3. the throughput chart -----------------------------------------------------------------


def _minutes(demo_app: DemoApp) -> list[dict]:
    """Records per minute over the last hour, read from the product's database."""
    engine = create_db_engine(f"sqlite:///{demo_app.data / 'holovitals.db'}")
    try:
        with Session(engine) as session:
            return dashboard.throughput(session, utcnow())
    finally:
        engine.dispose()


def _sandbox_connection(demo_app: DemoApp, name: str) -> int:
    """Another connection to the sandbox: its first sync writes every record anew."""
    with closing(demo_app.api_client("admin")) as admin:
        created = admin.post(
            "/connections",
            json={
                "name": name,
                "vendor": "generic",
                "base_url": demo_app.fhir,
                "client_id": DEMO_CLIENT_ID,
                "auth_method": "client_secret_basic",
                "client_secret": DEMO_CLIENT_SECRET,
                "status": "active",
            },
        )
        created.raise_for_status()
        return created.json()["id"]


def _run(api: httpx.Client, body: dict) -> dict:
    job = api.post("/sync/jobs", json=body)
    job.raise_for_status()

    def finished() -> dict | None:
        found = api.get(f"/sync/jobs/{job.json()['id']}").json()
        return found if found["status"] in ("completed", "failed", "cancelled") else None

    done = wait_for(finished, timeout=240, interval=1)
    assert done["status"] == "completed", done
    return done


def _quiet(demo_app: DemoApp) -> None:
    """Wait until no job of any connection waits or runs, the parts of split syncs included.

    The chart counts every record written in the last hour: a job an earlier test left
    running (or one a notification started) would add its records to the small minute.
    Read from the product's database: the API lists a split sync's parts only by parent.
    """
    engine = create_db_engine(f"sqlite:///{demo_app.data / 'holovitals.db'}")

    def active() -> list[tuple]:
        with Session(engine) as session:
            return list(
                session.exec(
                    select(SyncJob.id, SyncJob.job_type, SyncJob.status, SyncJob.parent_id).where(
                        SyncJob.status.in_(ACTIVE)
                    )
                )
            )

    try:
        wait_for(lambda: not active(), timeout=240, interval=1)
    except AssertionError:
        raise AssertionError(f"jobs still active: {active()}") from None
    finally:
        engine.dispose()


def _big_then_small_minute(demo_app: DemoApp, api: httpx.Client) -> None:
    """A minute with thousands of records written, and a later one with a single record.

    A fresh connection's full sync writes every record of the sandbox at once; a minute
    later one patient changed at the EHR and synced alone writes one record.
    """
    connection_id = _sandbox_connection(demo_app, f"Chart check {uuid.uuid4().hex[:6]}")
    _quiet(demo_app)
    _run(api, {"connection_id": connection_id, "job_type": "full"})
    _quiet(demo_app)
    started = utcnow().replace(second=0, microsecond=0)
    wait_for(lambda: utcnow().replace(second=0, microsecond=0) > started, timeout=70, interval=1)
    patient = "pt-00050"  # the conflict tests edit the first patients of the demo
    _edit_at_sandbox(demo_app.fhir, patient, f"19{random.randint(10, 99)}-05-05")
    done = _run(api, {"connection_id": connection_id, "job_type": "patient", "patient_id": patient})
    assert done["updated"] >= 1, done


# The y axis's labels and tick marks (recharts draws them in two groups, in the same order)
# and the bars' heights, in page pixels.
AXIS = """() => {
  const svg = document.querySelector('#throughput svg.recharts-surface');
  const frame = svg.getBoundingClientRect();
  const box = e => e.getBoundingClientRect();
  const lines = [...svg.querySelectorAll('.recharts-yAxis-tick-lines line')].map(box);
  const ticks = [...svg.querySelectorAll('.recharts-yAxis-tick-labels text')].map((t, i) => ({
    label: t.textContent, left: box(t).left, right: box(t).right, top: box(t).top,
    bottom: box(t).bottom, y: lines[i] ? lines[i].top + lines[i].height / 2 : null}));
  const bars = [...svg.querySelectorAll('.recharts-bar-rectangle path')].map(p => box(p).height);
  return {frame: {left: frame.left, right: frame.right, top: frame.top, bottom: frame.bottom},
          ticks, bars};
}"""


def test_throughput_axis_is_linear_readable_and_small_minutes_show(
    demo_app: DemoApp, page: Page, api
) -> None:
    _big_then_small_minute(demo_app, api)
    demo_app.sign_in(page, "viewer", "/")
    page.wait_for_selector(LIVE, timeout=WAIT)
    page.wait_for_selector("#throughput .recharts-bar-rectangle path", timeout=WAIT)
    chart = page.evaluate(AXIS)
    frame, ticks = chart["frame"], chart["ticks"]
    # Every label whole, inside the chart (not ")200" for "2200").
    for tick in ticks:
        assert frame["left"] <= tick["left"] and tick["right"] <= frame["right"], tick
        assert frame["top"] <= tick["top"] and tick["bottom"] <= frame["bottom"], tick
    # Linear: round values, evenly spaced in value and on screen, the top above the peak.
    values = [int(t["label"].replace(",", "")) for t in ticks]
    steps = {b - a for a, b in zip(values, values[1:], strict=False)}
    assert values[0] == 0 and len(steps) == 1 and len(values) >= 3, values
    gaps = [a["y"] - b["y"] for a, b in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) - min(gaps) <= 1.5, gaps
    per_minute = _minutes(demo_app)
    minutes = [m["records"] for m in per_minute]
    assert values[-1] >= max(minutes)
    # Every minute with records has a bar one can see, however small next to the peak.
    busy = [n for n in minutes if n > 0]
    # A small minute beside a big one.
    assert min(busy) * 100 < max(busy), [m for m in per_minute if m["records"]]
    visible = [h for h in chart["bars"] if h >= 3]
    assert len(visible) >= len(busy), (chart["bars"], busy)
    screenshot(page, "rough-edges-chart")


# -- 4. dialogs keep their buttons in view ----------------------------------------------------


def _in_view(page: Page, dialog: str, button: str) -> None:
    """The dialog within the window, its button visible, the overlay itself not scrolling."""
    box = page.locator(dialog).bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT, (dialog, box)
    target = page.locator(button).bounding_box()
    assert target is not None and target["y"] >= 0 and target["y"] + target["height"] <= HEIGHT, (
        button,
        target,
    )
    overlay = page.evaluate("""() => [...document.querySelectorAll('.rt-BaseDialogScroll')]
        .map(e => e.scrollHeight - e.clientHeight)""")
    assert all(extra <= 1 for extra in overlay), (dialog, overlay)


def test_every_dialog_keeps_its_buttons_in_view(demo_app: DemoApp, page: Page, api) -> None:
    if not _open_conflicts(api):
        _make_conflict(demo_app, api)
    job = api.get("/sync/jobs", params={"status": "completed", "limit": 1}).json()["items"][0]

    demo_app.sign_in(page, "admin", "/webhooks")
    expect(page.locator("#page-title")).to_have_text("Webhooks", timeout=WAIT)
    page.click("#webhook-new")
    expect(page.locator("#webhook-modal")).to_be_visible(timeout=WAIT)
    page.click("#webhook-include-content")  # the PHI warning makes the modal taller
    expect(page.locator("#webhook-content-warning")).to_be_visible(timeout=WAIT)
    page.click("#webhook-save")  # nothing filled in: a message under several fields
    expect(page.locator("#webhook-error-name")).to_be_visible(timeout=WAIT)
    _in_view(page, "#webhook-modal", "#webhook-save")
    page.click("#webhook-close")

    page.goto(f"{demo_app.url}/conflicts")
    page.locator(".conflict-open").first.click()
    expect(page.locator("#conflict-modal")).to_be_visible(timeout=WAIT)
    page.click("#conflict-record-toggle")  # the whole record side by side
    page.locator("#conflict-modal").get_by_role("radio", name="Type the values to keep").click()
    expect(page.locator("#conflict-manual")).to_be_visible(timeout=WAIT)
    _in_view(page, "#conflict-modal", "#conflict-resolve")
    page.keyboard.press("Escape")

    page.goto(f"{demo_app.url}/connections")
    page.click("#connection-add")
    expect(page.locator("#connection-dialog")).to_be_visible(timeout=WAIT)
    page.click("#connection-save")  # every required field says so
    expect(page.locator("#error-name")).to_be_visible(timeout=WAIT)
    _in_view(page, "#connection-dialog", "#connection-save")
    page.keyboard.press("Escape")
    page.locator(".connection-row", has_text=DEMO_NAME).get_by_role("button", name="Open").click()
    page.click("#rule-add")
    expect(page.locator("#rule-dialog")).to_be_visible(timeout=WAIT)
    _in_view(page, "#rule-dialog", "#rule-save")
    page.keyboard.press("Escape")

    page.goto(f"{demo_app.url}/")
    page.wait_for_selector(LIVE, timeout=WAIT)
    page.click("#start-sync")
    _in_view(page, "#start-sync-dialog", "#start-submit")
    page.keyboard.press("Escape")
    page.locator(f"#job-row-{job['id']} .job-detail-button").click()
    expect(page.locator("#job-detail")).to_be_visible(timeout=WAIT)
    _in_view(page, "#job-detail", "#detail-close")


# -- 5. a viewer is shown values, not inputs ------------------------------------------------

# Controls that only choose what to look at: filters, search boxes, pagers, tabs.
EDITABLE = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), textarea, [role=switch], [role=checkbox], [role=radio]')]
  .filter(e => e.offsetParent !== null && !e.closest('form#audit-filters'))
  .map(e => e.id || e.getAttribute('placeholder') || e.outerHTML.slice(0, 80))"""
LOOKING = {"Filter by name", "records-filter-patient", "records-filter-changed_since"}


def test_a_viewer_sees_values_not_inputs_on_every_page(demo_app: DemoApp, page: Page, api) -> None:
    if not _open_conflicts(api):
        _make_conflict(demo_app, api)
    demo_app.sign_in(page, "viewer", "/connections")
    expect(page.locator("#connections-table")).to_contain_text(DEMO_NAME, timeout=WAIT)
    page.locator(".connection-row", has_text=DEMO_NAME).get_by_role("button", name="Open").click()
    expect(page.locator("#schedule-concurrency")).to_be_visible(timeout=WAIT)
    assert set(page.evaluate(EDITABLE)) <= LOOKING, page.evaluate(EDITABLE)
    expect(page.locator("#schedule-concurrency")).to_have_text(re.compile(r"^\d+$"))

    # The Records page opens on the first connection by name, which other tests' connections
    # may precede with no records: open the demo's, as the job detail's link does.
    records = f"/records?connection={_demo_connection(api)}"
    for path, ready in (
        ("/", LIVE),
        ("/webhooks", "#webhook-inbound"),
        ("/alerts", "#alerts-filter"),
        (records, ".record-row"),
        ("/conflicts", ".conflict-row"),
    ):
        page.goto(f"{demo_app.url}{path}")
        page.wait_for_selector(ready, timeout=WAIT)
        assert set(page.evaluate(EDITABLE)) <= LOOKING, (path, page.evaluate(EDITABLE))
    page.locator(".conflict-open").first.click()
    expect(page.locator("#conflict-modal")).to_be_visible(timeout=WAIT)
    assert page.evaluate(EDITABLE) == []
