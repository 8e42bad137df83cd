"""Ctrl-C on `up --demo` while signed notifications pour in (issue #26, point 3).

`up` stops what makes work first (the web app with the receiver), then the workers (a running
sync job stops at its checkpoint), then the sandbox, then its private Redis. Nothing of it
may be left running, and after the next start every notification that was acknowledged
(202) is processed: none lost, none ended `failed` because Redis went away first, none
processed twice.

Runs on the session's shared `demo_app` after the other browser tests (tests/conftest.py
orders it with the Redis restarts) and leaves it running again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from holovitals_sync.sandbox import notify
from holovitals_sync.services.demo import DEMO_NAME
from tests.e2e.conftest import DemoApp, wait_ready
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
SENDERS = 16


@pytest.fixture
def api(demo_app: DemoApp) -> Iterator[httpx.Client]:
    client = demo_app.api_client("admin")
    yield client
    client.close()


def _inbound_secret(api: httpx.Client) -> tuple[int, str]:
    cid = next(c["id"] for c in api.get("/connections").json() if c["name"] == DEMO_NAME)
    answer = api.put(f"/connections/{cid}/inbound-auth", json={"auth": "holovitals_hmac"})
    assert answer.status_code == 200, answer.text
    return cid, answer.json()["secret"]


def _patients() -> list[str]:
    """Forty of the demo data's patients (several notifications each: some collapse)."""
    return [f"pt-{n:05d}" for n in range(1, 41)]


class Flood:
    """Signed notifications from SENDERS threads until stopped; keeps every 202's event id."""

    def __init__(self, url: str, secret: str, patients: list[str]) -> None:
        self.url, self.secret, self.patients = url, secret, patients
        self.acknowledged: list[int] = []
        self.refused: list[int] = []
        self.unreachable = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def send(self, sender: int) -> None:
        with httpx.Client(timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                n += 1
                focus = f"Patient/{self.patients[(sender * 7 + n) % len(self.patients)]}"
                body, _ = notify.build("vendor-event", "id-only", focus, None)
                headers = {
                    "Content-Type": "application/fhir+json",
                    **notify.sign(body, self.secret, "holovitals"),
                }
                try:
                    answer = client.post(self.url, content=body, headers=headers)
                except httpx.HTTPError:  # `up` is stopping: not acknowledged, not ours
                    with self._lock:
                        self.unreachable += 1
                    time.sleep(0.05)
                    continue
                with self._lock:
                    if answer.status_code == 202:
                        self.acknowledged.append(int(answer.json()["event_id"]))
                    else:
                        self.refused.append(answer.status_code)


def _left_running(data: Path) -> list[str]:
    """Processes still running with this data directory in their environment or command."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdecimal():
            continue
        with contextlib.suppress(OSError):
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            marker = str(data).encode()
            if (
                marker in (proc / "environ").read_bytes()
                or marker in (proc / "cmdline").read_bytes()
            ):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found


def _events(app: DemoApp, ids: list[int]) -> dict[int, tuple[str, int | None]]:
    wanted = set(ids)
    rows = _query(app, "SELECT id, status, job_id FROM inbound_event")
    return {i: (status, job) for i, status, job in rows if i in wanted}


def _webhook_workers(app: DemoApp) -> int:
    """The process group of `up`'s webhooks worker pool."""
    for pid in Path(f"/proc/{app.proc.pid}/task/{app.proc.pid}/children").read_text().split():
        with contextlib.suppress(OSError):
            if b"webhooks.default" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return int(pid)
    raise AssertionError("up runs no webhooks worker pool")


def _query(app: DemoApp, sql: str, *args: object) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(app.data / "holovitals.db", timeout=30)) as db:
        return db.execute(sql, args).fetchall()


def test_ctrl_c_under_load_loses_no_acknowledged_event(demo_app: DemoApp, api: httpx.Client):
    cid, secret = _inbound_secret(api)
    (before,) = _query(demo_app, "SELECT COALESCE(MAX(id), 0) FROM sync_job")[0]
    flood = Flood(f"{demo_app.api}/webhooks/inbound/{cid}", secret, _patients())
    with ThreadPoolExecutor(SENDERS) as pool:
        for sender in range(SENDERS):
            pool.submit(flood.send, sender)
        # Workers busy elsewhere (held still here) while intake goes on: a backlog builds,
        # and the stop meets it with workers in the middle of draining it.
        workers = _webhook_workers(demo_app)
        os.killpg(workers, signal.SIGSTOP)
        try:
            wait_for(lambda: len(flood.acknowledged) >= 1500, 120, 0.1)
        finally:
            os.killpg(workers, signal.SIGCONT)
        time.sleep(0.3)
        began = time.monotonic()
        demo_app.proc.send_signal(signal.SIGINT)  # Ctrl-C in the terminal
        code = demo_app.proc.wait(120)
        stopped_in = time.monotonic() - began
        flood.stop.set()
    assert code == 0, demo_app.log.read_text()[-3000:]
    assert not flood.refused, flood.refused[:10]
    log = demo_app.log.read_text()
    assert "did not stop in time" not in log.split("received SIGINT, stopping")[-1]
    assert stopped_in < 60
    assert _left_running(demo_app.data) == []  # no worker, horse, node or Redis outlives it

    acknowledged = sorted(flood.acknowledged)
    waiting = [s for s, _ in _events(demo_app, acknowledged).values() if s != "processed"]
    assert waiting  # the stop did meet a backlog (else this test proves little)
    assert len(set(acknowledged)) == len(acknowledged)
    demo_app.start()
    wait_ready(demo_app, 420)

    def all_processed() -> dict | None:
        events = _events(demo_app, acknowledged)
        return events if all(s == "processed" for s, _ in events.values()) else None

    try:
        events = wait_for(all_processed, 300, 2)
    except AssertionError:
        states = [s for s, _ in _events(demo_app, acknowledged).values()]
        pytest.fail(
            f"not all acknowledged events processed: { {s: states.count(s) for s in set(states)} }"
        )
    assert set(events) == set(acknowledged)  # every acknowledged event was stored
    jobs = {job for _, job in events.values()}
    assert None not in jobs  # each became (or joined) a sync job
    # Exactly once: every job the flood made is one an event names. An event processed twice
    # would have made a second job and left the first one named by no event.
    made = {
        job
        for (job,) in _query(
            demo_app,
            "SELECT id FROM sync_job WHERE requested_by_kind = 'webhook' "
            "AND connection_id = ? AND id > ?",
            cid,
            before,
        )
    }
    assert made and made == {job for job in jobs if job > before}
