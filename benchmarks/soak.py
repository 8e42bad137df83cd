"""Bounded soak: the whole product under steady mixed load, then a memory and log check.

    python benchmarks/soak.py [--minutes M] [--webhook-rate R] [--pages P]

Starts the product the README's way (`holovitals-sync up --demo`: sandbox EHR, private
Redis, RQ worker pools, Reflex dev server) on free ports in a scratch directory, on a fresh
PostgreSQL database (HOLOVITALS_TEST_PG_URL admin URL; dropped afterwards). For M minutes
(default 30; it stops by itself):

- every SYNC_EVERY s the sandbox's data changes (a "clinic day" of edits and new records)
  and an incremental sync of the demo connection is asked for through the REST API (not
  while the previous one is still running: the load stays steady, not piling up);
- signed inbound webhooks (X-HoloVitals-Signature, docs/webhooks.md) arrive at R/s;
- P headless chromium pages stay signed in on the dashboard (Reflex websocket open).

Every SAMPLE_EVERY s it samples the memory of the worker pools and of the Reflex backend
(python processes; the bun/node frontend dev server is left out) and the depth of every
RQ queue. Memory is PSS, reported as rss_*: shared pages are split between the processes
sharing them, so forked workers add up without counting one page many times.

Prints JSON lines: memory at the start (median of the first quarter of the samples after
a warm-up) and at the end (median of the last quarter) per group with the growth, the
largest queue depth, syncs asked/completed/failed, webhooks sent/accepted, dashboard
pages alive at the end, and the ERROR/CRITICAL/Traceback lines of the product's
log (count, plus the first few, which carry no PHI: the product never logs it).
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
import psutil
import redis
from _common import DemoProduct, commit_sha, fresh_postgres  # noqa: E402 (scripts)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = os.environ.get("HOLOVITALS_TEST_CHROMIUM", "/usr/bin/chromium")
WORKERS = {"sync": 2, "webhooks": 2, "conflicts": 1, "transformations": 1}
SYNC_EVERY = 15.0
CLINIC_CHANGES = 25
SAMPLE_EVERY = 5.0
GROWTH_LIMIT = 0.20  # "flat": end RSS within 20 % of the post-warm-up start
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback \(most recent call last\)")
SHA = commit_sha()


def emit(metric: str, value: float | int, unit: str, **extra: Any) -> None:
    line = {"bench": "soak", "metric": metric, "value": value, "unit": unit, **extra, "commit": SHA}
    print(orjson.dumps(line).decode(), flush=True)


class Product(DemoProduct):
    """The demo product on a scratch PostgreSQL database, with what the soak samples."""

    def __init__(self, root: Path, database_url: str) -> None:
        super().__init__(root, WORKERS, {"HOLOVITALS_DATABASE_URL": database_url})

    @property
    def sandbox(self) -> str:
        return f"http://127.0.0.1:{self.ehr}"

    def rss_groups(self) -> dict[str, int]:
        """Bytes of PSS: the worker pools (with their work horses) and the Reflex backend.

        PSS, not RSS: forked workers share most pages copy-on-write, and summing their RSS
        would count those pages once per process.
        """
        out = {"workers": 0, "backend": 0}
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.Error:
            return out
        for child in children:
            try:
                cmd = " ".join(child.cmdline())
                tree = [child, *child.children(recursive=True)]
                if "rq worker" in cmd:
                    out["workers"] += sum(_pss(p) for p in tree)
                elif "reflex" in cmd:  # the backend: Reflex's python processes, not bun/node
                    out["backend"] += sum(_pss(p) for p in tree if not _frontend(p))
            except psutil.Error:
                continue
        return out

    def queue_depth(self) -> int:
        """Jobs waiting on every RQ queue of the product's Redis."""
        client = redis.Redis(unix_socket_path=str(self.data / "redis.sock"))
        try:
            return sum(client.llen(key) for key in client.scan_iter("rq:queue:*"))
        finally:
            client.close()

    def log_errors(self) -> list[str]:
        self.log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()
        found = []
        for i, line in enumerate(lines):
            if not ERROR_LINE.search(line):
                continue
            if line.startswith("Traceback"):
                # The exception's own line (first unindented one after the frames) says
                # what happened; the frames carry file names only.
                line += " -> " + next(
                    (ln for ln in lines[i + 1 : i + 80] if ln and not ln.startswith(" ")), "?"
                )
            found.append(line[:300])
        return found


def _pss(proc: psutil.Process) -> int:
    try:
        return proc.memory_full_info().pss
    except psutil.Error:  # a work horse that has just exited
        return 0


def _frontend(proc: psutil.Process) -> bool:
    try:
        return any(tool in proc.name().lower() for tool in ("bun", "node", "esbuild"))
    except psutil.Error:
        return True


class Api:
    """The REST API as the demo admin, and the demo connection's inbound webhook secret."""

    def __init__(self, product: Product) -> None:
        from holovitals_sync.services.demo import read_demo_users

        self.client = httpx.Client(base_url=product.api, timeout=30)
        password = read_demo_users(product.data)["admin"]
        self.client.post(
            "/auth/login", json={"username": "admin", "password": password}
        ).raise_for_status()
        conns = self.client.get("/connections").raise_for_status().json()
        self.connection_id = int(conns[0]["id"])
        auth = (
            self.client.put(
                f"/connections/{self.connection_id}/inbound-auth", json={"auth": "holovitals_hmac"}
            )
            .raise_for_status()
            .json()
        )
        self.secret = str(auth["secret"])
        self.jobs: list[int] = []

    def start_incremental(self) -> None:
        """Ask for an incremental sync unless the previous one has not finished yet."""
        if self.jobs and self.job(self.jobs[-1])["status"] in ("pending", "queued", "running"):
            return
        body = {"connection_id": self.connection_id, "job_type": "incremental"}
        self.jobs.append(
            int(self.client.post("/sync/jobs", json=body).raise_for_status().json()["id"])
        )

    def job(self, job_id: int) -> dict[str, Any]:
        return self.client.get(f"/sync/jobs/{job_id}").raise_for_status().json()

    def outcome(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for job_id in self.jobs:
            status = self.job(job_id)["status"]
            counts[status] = counts.get(status, 0) + 1
        return counts


class Webhooks(threading.Thread):
    """Signed id-only notifications at a steady rate to the inbound endpoint."""

    def __init__(
        self, product: Product, connection_id: int, secret: str, rate: float, patients: list[str]
    ) -> None:
        super().__init__(daemon=True)
        self.url = f"{product.api}/webhooks/inbound/{connection_id}"
        self.secret, self.rate, self.patients = secret, rate, patients
        self.sent = self.accepted = 0
        self.statuses: dict[int, int] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        from holovitals_sync.sandbox import notify

        began = time.monotonic()
        with httpx.Client(timeout=30) as client:
            while not self.halt.is_set():
                due = began + self.sent / self.rate
                self.halt.wait(max(0.0, due - time.monotonic()))
                patient = self.patients[self.sent % len(self.patients)]
                body, ctype = notify.build(
                    "event-notification",
                    "id-only",
                    f"Patient/{patient}",
                    None,
                    events=self.sent + 1,
                )
                headers = {"Content-Type": ctype, **notify.sign(body, self.secret)}
                try:
                    status = client.post(self.url, content=body, headers=headers).status_code
                except httpx.HTTPError:
                    status = 0
                self.sent += 1
                self.accepted += status == 202
                self.statuses[status] = self.statuses.get(status, 0) + 1


class Dashboard:
    """Headless chromium pages signed in on the dashboard, kept open for the whole soak."""

    def __init__(self, product: Product, pages: int) -> None:
        from playwright.sync_api import sync_playwright

        from holovitals_sync.services.demo import read_demo_users

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        self.errors = 0
        password = read_demo_users(product.data)["viewer"]
        self.pages = []
        for _ in range(pages):
            page = self.browser.new_context().new_page()
            page.on("pageerror", self._count_error)
            page.goto(f"http://localhost:{product.front}/", timeout=300_000)
            page.wait_for_url(re.compile("/signin"), timeout=300_000)
            page.fill("#signin-username", "viewer")
            page.fill("#signin-password", password)
            page.click("#signin-submit")
            page.wait_for_selector("#live:has-text('live')", timeout=120_000)
            self.pages.append(page)

    def _count_error(self, _error: object) -> None:
        self.errors += 1

    def alive(self) -> int:
        """Pages whose live indicator still says the websocket is connected."""
        count = 0
        for page in self.pages:
            try:
                count += page.locator("#live:has-text('live')").count() > 0
            except Exception:  # a crashed page counts as not alive
                continue
        return count

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()


def patient_ids(product: Product) -> list[str]:
    """The sandbox's patients, for webhook bodies (ids only)."""
    token = httpx.post(
        f"{product.sandbox}/fhir/auth/token",
        data={"grant_type": "client_credentials"},
        auth=("holovitals-demo", "demo-secret"),
    ).json()["access_token"]
    bundle = httpx.get(
        f"{product.sandbox}/fhir/Patient?_count=1000&_elements=id",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ).json()
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


class Samples:
    """RSS per group and queue depth over time."""

    def __init__(self) -> None:
        self.rss: list[tuple[float, dict[str, int]]] = []
        self.max_depth = 0

    def take(self, product: Product, t: float) -> None:
        self.rss.append((t, product.rss_groups()))
        self.max_depth = max(self.max_depth, product.queue_depth())

    def start_end(self, warm: float) -> tuple[dict[str, int], dict[str, int]]:
        """Medians of the first and of the last quarter of the samples after the warm-up.

        One sample swings with the work horses alive at that instant (each is a forked
        process holding a batch); medians compare the steady levels instead.
        """
        after = [s for t, s in self.rss if t >= warm] or [self.rss[-1][1]]
        quarter = max(1, len(after) // 4)
        return _median(after[:quarter]), _median(after[-quarter:])


def _median(samples: list[dict[str, int]]) -> dict[str, int]:
    return {group: int(statistics.median(s[group] for s in samples)) for group in samples[0]}


def soak(product: Product, minutes: float, rate: float, pages: int) -> None:
    api = Api(product)
    dashboard = Dashboard(product, pages)
    hooks = Webhooks(product, api.connection_id, api.secret, rate, patient_ids(product))
    samples = Samples()
    began = time.monotonic()
    deadline = began + minutes * 60
    warm = min(60.0, minutes * 60 / 4)  # the first syncs and page loads allocate for good
    hooks.start()
    next_sync = began
    try:
        while (now := time.monotonic()) < deadline:
            if now >= next_sync:
                httpx.post(
                    f"{product.sandbox}/_sandbox/clinic-day", params={"changes": CLINIC_CHANGES}
                ).raise_for_status()
                api.start_incremental()
                next_sync = now + SYNC_EVERY
            samples.take(product, now - began)
            time.sleep(SAMPLE_EVERY)
    finally:
        hooks.halt.set()
        hooks.join(30)
    alive = dashboard.alive()
    settle(product, api)
    report(product, api, hooks, samples, warm, minutes, alive, dashboard.errors, pages)
    dashboard.close()


def settle(product: Product, api: Api, timeout: float = 120) -> None:
    """Let the last sync and the queued webhook work finish (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = api.job(api.jobs[-1])["status"] if api.jobs else "completed"
        if last not in ("pending", "queued", "running") and product.queue_depth() == 0:
            return
        time.sleep(1)


def report(
    product: Product,
    api: Api,
    hooks: Webhooks,
    samples: Samples,
    warm: float,
    minutes: float,
    alive: int,
    page_errors: int,
    pages: int,
) -> None:
    start, end = samples.start_end(warm)
    for group in ("workers", "backend"):
        growth = (end[group] - start[group]) / start[group] if start[group] else 0.0
        emit(
            f"rss_{group}_mb",
            round(end[group] / 2**20, 1),
            "MB",
            start_mb=round(start[group] / 2**20, 1),
            growth=round(growth, 3),
            target=f"growth <= {GROWTH_LIMIT}",
            met=growth <= GROWTH_LIMIT,
            minutes=minutes,
        )
    emit("max_queue_depth", samples.max_depth, "jobs", samples=len(samples.rss))
    outcome = api.outcome()
    emit(
        "incremental_syncs",
        outcome.get("completed", 0),
        "jobs",
        asked=len(api.jobs),
        **{k: v for k, v in outcome.items() if k != "completed"},
    )
    emit(
        "webhooks_accepted",
        hooks.accepted,
        "events",
        sent=hooks.sent,
        rate=hooks.rate,
        statuses={str(k): v for k, v in hooks.statuses.items()},
    )
    emit("dashboard_pages_alive", alive, "pages", opened=pages, page_errors=page_errors)
    errors = product.log_errors()
    emit("log_errors", len(errors), "lines", met=not errors, first=errors[:5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="soak length (default 30)")
    parser.add_argument("--webhook-rate", type=float, default=5.0, help="inbound events/s")
    parser.add_argument("--pages", type=int, default=2, help="dashboard browser pages")
    args = parser.parse_args()
    url, drop = fresh_postgres("hv_soak")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            product = Product(Path(tmp), url)
            try:
                product.wait_ready()
                soak(product, args.minutes, args.webhook_rate, args.pages)
            finally:
                product.stop()
    finally:
        drop()


if __name__ == "__main__":
    main()
