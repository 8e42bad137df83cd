"""Dashboard latency: a worker commits a batch -> the job's row changes in every open tab.

    python benchmarks/ui_latency.py [--quick] [--samples N] [--tabs N] [--prod]

Starts the product the README's way (`holovitals-sync up --demo`, or `up --demo --prod`:
sandbox EHR, private Redis, RQ workers sized by the product for this machine, the Reflex
app) on free ports in a scratch directory, signs in as the demo viewer in headless Debian
chromium and leaves the dashboard open. It then runs sync jobs through the API with the
sandbox answering each FHIR call after a short delay, so every job sends several progress
events.

For each job event the worker publishes (`at`: wall clock right after the batch's commit)
and each change of the job row in a tab (a MutationObserver noting `Date.now()` when the
row's fetched counter or progress bar changes), the latency is the tab's time minus `at`
for the same job and fetched count. Events the dashboard coalesced away never reach the DOM
and are not counted. Prints JSON lines:

    {"bench": "ui_latency", "metric": "ui_update_latency_ms", "p50": ..., "p95": ..., ...}

With `--viewers`, each extra tab runs in a chromium of its own (N people rather than one
person's N tabs; each browser has its own network service and compositor).

With `--tabs N` (N > 1) the same run measures twice: first one tab alone (the baseline),
then N tabs of the same browser open on the dashboard at once, every tab's every update
counted (`ui_update_latency_ms_tabs`, with the one-tab p95 as `baseline`). While the N
tabs are open it also counts the subscribers of the job-event channel on the product's
Redis (`PUBSUB NUMSUB`, this script's own subscription left out): one per backend process
is the design. Each tab gets `--samples` updates (50; 20 with --quick).

Each line also splits the latency where the page handles the websocket frame (a listener
added before the app's own, `WS_ARRIVALS`): `to_page_*` (the server, the wire, and the
browser's delivery of the frame to the tab) and `in_page_*` (the app's handling up to the
row's change).

Targets: p95 under 1000 ms for one tab (#10); p95 under 300 ms for ten tabs on
`up --demo --prod` (#26). The backend runs without hot reload
(REFLEX_HOT_RELOAD_OVERRIDE_PATHS), so edits elsewhere in the checkout do not restart it
mid-run.
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
from _common import DemoProduct, commit_sha  # noqa: E402 (benchmarks run as scripts)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = os.environ.get("HOLOVITALS_TEST_CHROMIUM", "/usr/bin/chromium")
# Every tab is someone looking at it: chromium must not throttle the ones it thinks hidden.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-renderer-backgrounding",
                 "--disable-background-timer-throttling",
                 "--disable-backgrounding-occluded-windows"]  # fmt: skip
LATENCY_MS = 40  # per FHIR call: stretches a job over many progress events
BATCH_SIZE = 10
TYPES = ["Observation", "Condition", "MedicationRequest", "Encounter", "DiagnosticReport",
         "AllergyIntolerance", "Immunization", "Procedure"]  # fmt: skip
# Notes (job id, fetched) -> first time seen, for every job row the page shows.
OBSERVE_ROWS = """() => {
  window.__rows = {};
  const note = () => {
    const now = Date.now();
    for (const row of document.querySelectorAll('.job-row')) {
      const key = row.id.replace('job-row-', '') + ':' +
                  row.querySelector('.counter-fetched').innerText;
      if (!(key in window.__rows)) window.__rows[key] = now;
    }
  };
  note();
  if (window.__observer) window.__observer.disconnect();
  window.__observer = new MutationObserver(note);
  window.__observer.observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
}"""
# Notes when each websocket frame reaches the page, before the app handles it: the part of
# an update's latency spent before the browser (hub, per-tab state, wire) versus in it.
WS_ARRIVALS = """(() => {
  window.__wsAt = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => {
        window.__wsAt.push(Date.now());
        if (window.__wsAt.length > 20000) window.__wsAt.splice(0, 10000);
      });
    }
  };
})()"""
LIVE = "#live:has-text('live')"
SHA = commit_sha()


class Product(DemoProduct):
    """The demo product with small sync batches, so a sync gives many progress updates."""

    def __init__(self, root: Path, prod: bool) -> None:
        super().__init__(root, None, {"HOLOVITALS_SYNC_BATCH_SIZE": str(BATCH_SIZE)}, prod=prod)

    def redis(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.data / "redis.sock"))


class EventLog:
    """Every job event on the product's Redis: (job id, fetched) -> publish time (ms)."""

    def __init__(self, product: Product) -> None:
        from holovitals_sync.services.orchestration.events import channel_for

        self.published: dict[str, float] = {}
        # Kept on self: a collected client closes its pool, the subscription's socket too.
        self._client = product.redis()
        self.channel = channel_for(self._client)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(self.channel)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for message in self._pubsub.listen():
                event = orjson.loads(message["data"])
                key = f"{event['job_id']}:{event['fetched']}"
                self.published.setdefault(key, event["at"] * 1000)
        except (redis.ConnectionError, ValueError):
            return  # the product (and its Redis) stopped at the end of the run

    def others(self, product: Product) -> int:
        """Subscribers of the job-event channel besides this log: the product's own."""
        client = product.redis()
        try:
            ((_, count),) = client.pubsub_numsub(self.channel)
        finally:
            client.close()
        return int(count) - 1


def sign_in(page: Any, product: Product) -> None:
    from holovitals_sync.services.demo import read_demo_users

    password = read_demo_users(product.data)["viewer"]
    page.goto(f"http://localhost:{product.front}/", timeout=300_000)
    page.wait_for_url(re.compile("/signin"), timeout=300_000)
    page.fill("#signin-username", "viewer")
    page.fill("#signin-password", password)
    page.click("#signin-submit")
    page.wait_for_selector(LIVE, timeout=120_000)


def open_tab(context: Any, product: Product) -> Any:
    """One more dashboard tab in the signed-in browser (it shares the session cookie)."""
    page = context.new_page()
    page.goto(f"http://localhost:{product.front}/", timeout=300_000)
    page.wait_for_selector(LIVE, timeout=120_000)
    return page


def viewer_tab(playwright: Any, product: Product) -> Any:
    """Another person watching: a browser of their own (its own network service and
    compositor), signed in as the demo viewer."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(WS_ARRIVALS)
    page = context.new_page()
    sign_in(page, product)
    return page


class Jobs:
    """Starts resource jobs through the API as the demo operator, one at a time."""

    def __init__(self, product: Product) -> None:
        from holovitals_sync.services.demo import read_demo_users

        self.client = httpx.Client(base_url=product.api, timeout=30)
        self.client.post(
            "/auth/login",
            json={"username": "operator", "password": read_demo_users(product.data)["operator"]},
        )
        self.connection = self.client.get("/connections").json()[0]["id"]
        self.started = 0
        self.types = list(TYPES)
        httpx.put(
            f"http://127.0.0.1:{product.ehr}/_sandbox/faults", json={"latency_ms": LATENCY_MS}
        ).raise_for_status()

    def run_one(self) -> int:
        while True:
            kind = self.types[self.started % len(self.types)]
            answer = self.client.post(
                "/sync/jobs",
                json={
                    "connection_id": self.connection,
                    "job_type": "resource",
                    "resource_type": kind,
                },
            )
            if answer.status_code == 422 and len(self.types) > 1:
                self.types.remove(kind)  # a type the demo's vendor does not serve
                continue
            if answer.status_code not in (409, 429, 503):
                break
            print(f"starting a job: {answer.status_code} {answer.text[:200]}", file=sys.stderr)
            time.sleep(2)  # a limit, or the queue busy: try again
        answer.raise_for_status()
        self.started += 1
        job = answer.json()
        deadline = time.monotonic() + 300
        while self.client.get(f"/sync/jobs/{job['id']}").json()["status"] not in (
            "completed",
            "failed",
            "cancelled",
        ):
            if time.monotonic() > deadline:
                raise SystemExit(f"job {job['id']} did not finish")
            time.sleep(0.5)
        time.sleep(1.5)  # the last frames reach the browser
        return job["id"]


def split_at_browser(
    seen: dict[str, float], published: dict[str, float], arrivals: list[float], since: float
) -> list[tuple[float, float]]:
    """(until the page handles the frame, the app's handling up to the row's change) for
    each matched update (ms): the last frame the page handled before the row changed splits
    it. The first part holds the server, the wire and the browser's delivery of the frame
    to the tab's renderer (see BENCHMARKS.md, "#26 where ten-tab latency goes")."""
    parts = []
    for key, shown in seen.items():
        sent = published.get(key, 0)
        if sent <= since or key.endswith(":0"):
            continue
        at = bisect.bisect_right(arrivals, shown) - 1
        if at < 0 or arrivals[at] < sent:
            continue
        parts.append((arrivals[at] - sent, shown - arrivals[at]))
    return parts


def measure(
    pages: list[Any],
    jobs: Jobs,
    events: EventLog,
    wanted: int,
    on_job: Any = None,
    parts: list[tuple[float, float]] | None = None,
) -> list[list[float]]:
    """Run jobs until every tab has `wanted` latencies; each tab's latencies (ms).

    `parts`, when given, receives each update's split (see `split_at_browser`).
    """
    # Rows already on screen show events published before this phase: not measured.
    began = time.time() * 1000
    for page in pages:
        page.evaluate(OBSERVE_ROWS)
    per_tab: list[list[float]] = [[] for _ in pages]
    for _ in range(60):
        job = jobs.run_one()
        if on_job is not None:
            on_job()
        per_tab = [
            matched(page.evaluate("window.__rows"), events.published, began) for page in pages
        ]
        print(
            f"{len(pages)} tab(s), job {job}: updates matched per tab "
            f"{[len(t) for t in per_tab]} ({len(events.published)} events)",
            file=sys.stderr,
        )
        if min(len(t) for t in per_tab) >= wanted:
            break
    if parts is not None:
        for page in pages:
            parts += split_at_browser(
                page.evaluate("window.__rows"),
                events.published,
                page.evaluate("window.__wsAt || []"),
                began,
            )
    return [t[:wanted] for t in per_tab]


def matched(seen: dict[str, float], published: dict[str, float], since: float) -> list[float]:
    """Browser time minus publish time for every (job, fetched) seen on both sides and
    published after `since` (ms)."""
    return [
        seen[key] - published[key]
        for key in seen
        if published.get(key, 0) > since and not key.endswith(":0")
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def figures(latencies: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(latencies), 1),
        "p95": round(percentile(latencies, 0.95), 1),
        "max": round(max(latencies), 1),
    }


def emit(metric: str, **fields: Any) -> None:
    print(
        orjson.dumps({"bench": "ui_latency", "metric": metric, **fields, "commit": SHA}).decode(),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20 updates instead of 50")
    parser.add_argument("--samples", type=int, default=None, help="updates per tab")
    parser.add_argument("--tabs", type=int, default=1, help="dashboard tabs open at once")
    parser.add_argument("--prod", action="store_true", help="up --demo --prod")
    parser.add_argument(
        "--viewers",
        action="store_true",
        help="each extra tab in a browser of its own (people, not tabs)",
    )
    parser.add_argument("--log", type=Path, default=None, help="keep up's log here")
    args = parser.parse_args()
    wanted = args.samples or (20 if args.quick else 50)
    from playwright.sync_api import sync_playwright

    common = {
        "unit": "ms",
        "batch_size": BATCH_SIZE,
        "ehr_latency_ms": LATENCY_MS,
        "mode": "prod" if args.prod else "dev",
    }
    subscribers: list[int] = []
    one_parts: list[tuple[float, float]] = []
    many_parts: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="hv-ui-bench-") as tmp:
        product = Product(Path(tmp), args.prod)
        try:
            product.wait_ready()
            health = httpx.get(f"{product.api}/health", timeout=10).json()
            common["workers"] = sum(q["workers"] for q in health["queues"].values())
            events = EventLog(product)
            jobs = Jobs(product)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_init_script(WS_ARRIVALS)
                first = context.new_page()
                sign_in(first, product)
                (one,) = measure([first], jobs, events, wanted, parts=one_parts)
                many: list[list[float]] = []
                if args.tabs > 1:
                    extra = (
                        viewer_tab(playwright, product)
                        if args.viewers
                        else open_tab(context, product)
                        for _ in range(args.tabs - 1)
                    )
                    pages = [first, *extra]
                    many = measure(
                        pages,
                        jobs,
                        events,
                        wanted,
                        lambda: subscribers.append(events.others(product)),
                        parts=many_parts,
                    )
                browser.close()
        finally:
            product.stop()
            if args.log is not None:
                shutil.copyfile(product.log_path, args.log)
    if not one or (args.tabs > 1 and not all(many)):
        raise SystemExit("an update never reached a tab")
    loadavg = round(os.getloadavg()[0], 2)
    single = figures(one)
    emit(
        "ui_update_latency_ms",
        value=single["p95"],
        **single,
        **common,
        tabs=1,
        target_p95=1000,
        n=len(one),
        loadavg_1m=loadavg,
        **where(one_parts),
    )
    if many:
        flat = [x for tab in many for x in tab]
        worst_tab = max(percentile(tab, 0.95) for tab in many)
        several = figures(flat)
        emit(
            "ui_update_latency_ms_tabs",
            value=several["p95"],
            **several,
            **common,
            tabs=args.tabs,
            browsers=args.tabs if args.viewers else 1,
            baseline=single["p95"],
            ratio=round(several["p95"] / single["p95"], 2),
            worst_tab_p95=round(worst_tab, 1),
            target_p95=300,
            n=len(flat),
            redis_subscriptions=max(subscribers, default=0),
            loadavg_1m=loadavg,
            **where(many_parts),
        )


def where(parts: list[tuple[float, float]]) -> dict[str, float]:
    """p50/p95 of each part of the latency: until the page handles the frame (server, wire
    and the browser's delivery), then the app (the frame's handler to the row's change)."""
    if not parts:
        return {}
    out: dict[str, float] = {}
    for n, name in enumerate(("to_page", "in_page")):
        values = [p[n] for p in parts]
        out[f"{name}_p50"] = round(statistics.median(values), 1)
        out[f"{name}_p95"] = round(percentile(values, 0.95), 1)
    return out


if __name__ == "__main__":
    main()
