"""Dashboard latency: a worker commits a batch -> the job's row changes in the browser.

    python benchmarks/ui_latency.py [--quick] [--samples N]

Starts the product the README's way (`holovitals-sync up --demo`: sandbox EHR, private
Redis, RQ workers, Reflex dev server) on free ports in a scratch directory, signs in as
the demo viewer in headless Debian chromium and leaves the dashboard open. It then runs
sync jobs through the API with the sandbox answering each FHIR call after a short delay,
so every job sends several progress events.

For each job event the worker publishes (`at`: wall clock right after the batch's commit)
and each change of the job row in the browser (a MutationObserver noting `Date.now()` when
the row's fetched counter or progress bar changes), the latency is the browser time minus
`at` for the same job and fetched count. Events the dashboard coalesced away (it shows at
most ~4 updates a second) never reach the DOM and are not counted. Prints JSON lines:

    {"bench": "ui_latency", "metric": "ui_update_latency_ms", "p50": ..., "p95": ..., ...}

Target: p95 under 1000 ms. The backend runs without hot reload (REFLEX_HOT_RELOAD_OVERRIDE
_PATHS), so edits elsewhere in the checkout do not restart it mid-run.
"""

from __future__ import annotations

import argparse
import os
import re
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
WORKERS = {"sync": 1, "webhooks": 1, "conflicts": 1, "transformations": 1}
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
  new MutationObserver(note).observe(document.body,
    {subtree: true, childList: true, characterData: true, attributes: true});
}"""
SHA = commit_sha()


class Product(DemoProduct):
    """The demo product with small sync batches, so a sync gives many progress updates."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, WORKERS, {"HOLOVITALS_SYNC_BATCH_SIZE": str(BATCH_SIZE)})


class EventLog:
    """Every job event on the product's Redis: (job id, fetched) -> publish time (ms)."""

    def __init__(self, data: Path) -> None:
        from holovitals_sync.services.orchestration.events import channel_for

        self.published: dict[str, float] = {}
        # Kept on self: a collected client closes its pool, the subscription's socket too.
        self._client = redis.Redis(unix_socket_path=str(data / "redis.sock"))
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel_for(self._client))
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


def sign_in(page: Any, product: Product) -> None:
    from holovitals_sync.services.demo import read_demo_users

    password = read_demo_users(product.data)["viewer"]
    page.goto(f"http://localhost:{product.front}/", timeout=300_000)
    page.wait_for_url(re.compile("/signin"), timeout=300_000)
    page.fill("#signin-username", "viewer")
    page.fill("#signin-password", password)
    page.click("#signin-submit")
    page.wait_for_selector("#live:has-text('live')", timeout=120_000)


def run_jobs(product: Product, page: Any, events: EventLog, wanted: int) -> list[float]:
    """Run resource jobs one after another until `wanted` latencies are measured."""
    client = httpx.Client(base_url=product.api, timeout=30)
    from holovitals_sync.services.demo import read_demo_users

    client.post("/auth/login", json={"username": "operator",
                                     "password": read_demo_users(product.data)["operator"]})
    connection = client.get("/connections").json()[0]["id"]
    httpx.put(f"http://127.0.0.1:{product.ehr}/_sandbox/faults",
              json={"latency_ms": LATENCY_MS}).raise_for_status()
    latencies: list[float] = []
    for i in range(40):
        job = client.post("/sync/jobs", json={"connection_id": connection,
                                              "job_type": "resource",
                                              "resource_type": TYPES[i % len(TYPES)]}).json()
        deadline = time.monotonic() + 300
        while client.get(f"/sync/jobs/{job['id']}").json()["status"] not in (
                "completed", "failed", "cancelled"):
            if time.monotonic() > deadline:
                raise SystemExit(f"job {job['id']} did not finish")
            time.sleep(0.5)
        time.sleep(1.5)  # the last frames reach the browser
        seen = page.evaluate("window.__rows")
        latencies = matched(seen, events.published)
        print(f"job {job['id']}: {len(latencies)} updates matched "
              f"({len(seen)} row states seen, {len(events.published)} events)", file=sys.stderr)
        if len(latencies) >= wanted:
            break
    client.close()
    return latencies


def matched(seen: dict[str, float], published: dict[str, float]) -> list[float]:
    """Browser time minus publish time for every (job, fetched) seen on both sides."""
    return [seen[key] - published[key] for key in seen
            if key in published and not key.endswith(":0")]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20 updates instead of 50")
    parser.add_argument("--samples", type=int, default=None)
    args = parser.parse_args()
    wanted = args.samples or (20 if args.quick else 50)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hv-ui-bench-") as tmp:
        product = Product(Path(tmp))
        try:
            product.wait_ready()
            events = EventLog(product.data)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                sign_in(page, product)
                page.evaluate(OBSERVE_ROWS)
                latencies = run_jobs(product, page, events, wanted)[:wanted]
                browser.close()
        finally:
            product.stop()
    if not latencies:
        raise SystemExit("no update reached the browser")
    line = {"bench": "ui_latency", "metric": "ui_update_latency_ms",
            "p50": round(statistics.median(latencies), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "max": round(max(latencies), 1), "unit": "ms", "target_p95": 1000,
            "n": len(latencies), "batch_size": BATCH_SIZE, "ehr_latency_ms": LATENCY_MS,
            "commit": SHA}  # fmt: skip
    print(orjson.dumps(line).decode(), flush=True)


if __name__ == "__main__":
    main()
