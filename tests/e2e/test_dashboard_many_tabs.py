"""Several dashboard tabs open at once in Debian's chromium against `up --demo` (#26, point 2).

The backend process keeps one Redis subscription whatever the number of tabs, and every tab
follows a running job live: its row's status and counters and the queue cards, without a
reload.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from holovitals_sync.services import alerts, changes
from holovitals_sync.services.demo import DEMO_NAME
from holovitals_sync.services.orchestration import events
from tests.e2e.conftest import DemoApp

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
TABS = 4
LIVE = "#live:has-text('live')"
# Per job row: every status and fetched value shown; and the sync card's running figure.
WATCH = """() => {
  window.__seen = {}; window.__running = []; window.__notReloaded = true;
  const push = (list, value) => { if (list[list.length - 1] !== value) list.push(value); };
  const note = () => {
    for (const row of document.querySelectorAll('.job-row')) {
      const seen = window.__seen[row.id] ??= {status: [], fetched: []};
      push(seen.status, row.querySelector('.job-status').innerText);
      push(seen.fetched, row.querySelector('.counter-fetched').innerText);
    }
    const card = document.querySelector('#queue-sync');
    const label = card && [...card.querySelectorAll('*')].find(e => e.innerText === 'running');
    const figure = label && label.nextElementSibling;
    if (figure) push(window.__running, figure.innerText);
  };
  note();
  new MutationObserver(note).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
}"""


@pytest.fixture
def api(demo_app: DemoApp) -> Iterator[httpx.Client]:
    client = demo_app.api_client("operator")
    yield client
    client.close()


@pytest.fixture
def slow_ehr(demo_app: DemoApp) -> Iterator[None]:
    """Every FHIR call of the sandbox answers after 150 ms: the job gives many events."""
    origin = demo_app.fhir.removesuffix("/fhir")
    httpx.put(f"{origin}/_sandbox/faults", json={"latency_ms": 150}).raise_for_status()
    yield
    httpx.delete(f"{origin}/_sandbox/faults").raise_for_status()


def _subscribers(app: DemoApp) -> list[int]:
    client = redis.Redis.from_url(app.redis_url)
    try:
        channels = [
            events.channel_for(client),
            alerts.channel_for(client),
            changes.channel_for(client),
        ]
        return [count for _channel, count in client.pubsub_numsub(*channels)]
    finally:
        client.close()


def test_several_tabs_share_one_subscription_and_all_follow_a_running_job(
    demo_app: DemoApp, browser, api: httpx.Client, slow_ehr: None
):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        first = context.new_page()
        demo_app.sign_in(first, "viewer", "/")
        tabs = [first, *(context.new_page() for _ in range(TABS - 1))]
        for tab in tabs[1:]:
            tab.goto(f"{demo_app.url}/", timeout=180_000)  # the same session's cookie
        for tab in tabs:
            tab.wait_for_selector(LIVE, timeout=120_000)
            tab.evaluate(WATCH)
        # The dev server runs one backend process: one subscriber per channel, not per tab.
        assert _subscribers(demo_app) == [1, 1, 1]

        connection = next(c["id"] for c in api.get("/connections").json() if c["name"] == DEMO_NAME)
        job = api.post("/sync/jobs", json={"connection_id": connection, "job_type": "full"}).json()
        row = f"job-row-{job['id']}"
        for tab in tabs:
            tab.wait_for_function(
                "id => { const s = window.__seen[id]; "
                "return s && s.status[s.status.length - 1] === 'completed'; }",
                arg=row,
                timeout=300_000,
            )
        finished = api.get(f"/sync/jobs/{job['id']}").json()
        assert finished["status"] == "completed" and finished["fetched"] > 0
        for n, tab in enumerate(tabs):
            seen = tab.evaluate("window.__seen")[row]
            # Live in every tab: it went through running, counted up, and ended where the
            # job ended, without a reload.
            assert "running" in seen["status"], (n, seen)
            fetched = [int(v.replace(",", "")) for v in seen["fetched"]]
            assert len([v for v in fetched if v > 0]) >= 2, (n, seen)
            assert fetched[-1] == finished["fetched"], (n, seen)
            assert tab.evaluate("window.__notReloaded") is True
            # The cards follow the events too: the sync card counted the running job.
            running = tab.evaluate("window.__running")
            assert any(v not in ("", "0") for v in running), (n, running)
        assert _subscribers(demo_app) == [1, 1, 1]
    finally:
        context.close()
