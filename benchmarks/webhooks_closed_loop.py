"""Closed-loop comparison of the webhook receiver with a bare endpoint (issue #26).

Run by `benchmarks/webhooks.py` (or alone: `python benchmarks/webhooks_closed_loop.py
[--quick]`). The product runs as shipped for production, `holovitals-sync up --demo --prod`
in a scratch directory: the backend processes the product sizes for this machine, RQ workers
on, and the events it acknowledges processed for real (each becomes or joins a patient sync
against the sandbox EHR, so the workers are busy throughout). Beside it, on the same
machine, the bare endpoint (`_bare_receiver.py`, served by granian with as many processes)
does only what acknowledging safely needs: the HMAC check, Redis `SET NX` against replays
and `LPUSH` onto a list, on the product's own Redis.

Both take the same load: `CONNECTIONS` keep-alive connections, each sending its next signed
notification as soon as the previous one is answered (closed loop: the server sets the
pace). The two alternate in rounds, so a change in the machine's load hits both; a short
warm-up precedes each. Figures per target: acknowledged events per second and the latency
of each request, p50 and p99. Afterwards every event the receiver acknowledged (202, its
event id) must end `processed` and exactly once: each names the job it became or joined,
and every job made from webhooks is named by an event (an event processed twice would have
made a second job that no event names).

Targets: receiver >= 0.7x the bare endpoint, p99 < 50 ms, every acknowledged event
processed exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
import sqlalchemy as sa
from _common import DemoProduct, commit_sha, free_port, fresh_postgres  # noqa: E402 (benchmarks run as scripts)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from holovitals_sync.config import cores  # noqa: E402

HERE = Path(__file__).resolve().parent
CONNECTIONS = 32
PATIENTS = 50  # the demo sandbox's
WARM_UP = 2.0
DRAIN_TIMEOUT = 900.0

try:  # the sender shares the cores with both servers: the leaner its loop, the better
    from uvloop import run
except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
    run = asyncio.run


@dataclass
class Target:
    """One endpoint under load, and what it answered over the measured rounds."""

    name: str
    port: int
    path: str
    secret: str
    sent: int = 0  # notifications numbered so far (each round continues the count)
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    event_ids: list[int] = field(default_factory=list)
    exhausted: int = 0  # rounds that ran out of prepared requests before their time

    def requests(self, n: int) -> list[bytes]:
        """The next `n` signed notifications (distinct: numbered), as raw HTTP/1.1."""
        from holovitals_sync.sandbox import notify

        out = []
        for i in range(self.sent, self.sent + n):
            body, ctype = notify.build(
                "event-notification",
                "id-only",
                f"Patient/pt-{i % PATIENTS + 1:05d}",
                None,
                events=i + 1,
            )
            headers = {
                "Host": f"127.0.0.1:{self.port}",
                "Content-Type": ctype,
                "Content-Length": str(len(body)),
                **notify.sign(body, self.secret),
            }
            head = f"POST {self.path} HTTP/1.1\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in headers.items()
            )
            out.append(head.encode() + b"\r\n" + body)
        self.sent += n
        return out

    @property
    def acknowledged(self) -> int:
        return self.statuses.get(202, 0)

    def rate(self) -> float:
        return self.acknowledged / self.seconds if self.seconds else 0.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return status, await reader.readexactly(length)


async def closed_loop(
    port: int, requests: list[bytes], seconds: float
) -> tuple[list[float], list[tuple[int, bytes]], float, bool]:
    """CONNECTIONS senders, each sending as soon as answered, until time or requests run
    out. Returns latencies (s), (status, body) answers, elapsed seconds, and whether the
    requests ran out first."""
    order = itertools.count()
    latencies: list[float] = []
    answers: list[tuple[int, bytes]] = []
    start = time.perf_counter()
    stop = start + seconds

    async def sender() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop:
                i = next(order)
                if i >= len(requests):
                    return
                began = time.perf_counter()
                writer.write(requests[i])
                answers.append(await _read_response(reader))
                latencies.append(time.perf_counter() - began)
        finally:
            writer.close()

    await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - start
    return latencies, answers, elapsed, next(order) > len(requests)


def load(target: Target, seconds: float, expected_rate: float, *, measured: bool) -> float:
    """One round against one target; returns its rate (acknowledged per second)."""
    requests = target.requests(max(2000, int(expected_rate * seconds * 1.5)))
    latencies, answers, elapsed, ran_out = run(closed_loop(target.port, requests, seconds))
    acknowledged = sum(1 for status, _ in answers if status == 202)
    for status, body in answers:  # warm-up events too must be processed, once
        if status == 202 and (event_id := orjson.loads(body).get("event_id")) is not None:
            target.event_ids.append(int(event_id))
    if measured:
        target.seconds += elapsed
        target.latencies += latencies
        target.exhausted += ran_out
        for status, _body in answers:
            target.statuses[status] = target.statuses.get(status, 0) + 1
    print(
        f"{target.name}: {acknowledged / elapsed:,.0f} acknowledged/s over {elapsed:.1f} s"
        f"{' (warm-up)' if not measured else ''}",
        file=sys.stderr,
        flush=True,
    )
    return acknowledged / elapsed


def start_bare(
    product: DemoProduct, secret: str, workers: int, log: Path
) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "BARE_SECRET": secret,
        "BARE_PREFIX": "bench:bare",
        "BARE_REDIS_URL": f"unix://{product.data / 'redis.sock'}",
    }
    argv = [
        str(Path(sys.executable).parent / "granian"),
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "_bare_receiver:app",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"http://127.0.0.1:{port}/", content=b"{}", timeout=2)
            return proc, port
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"the bare endpoint did not start; see {log}")


def inbound_secret(product: DemoProduct) -> tuple[int, str]:
    from holovitals_sync.services.demo import DEMO_NAME, read_demo_users

    with httpx.Client(base_url=product.api, timeout=30) as admin:
        admin.post(
            "/auth/login",
            json={"username": "admin", "password": read_demo_users(product.data)["admin"]},
        ).raise_for_status()
        cid = next(c["id"] for c in admin.get("/connections").json() if c["name"] == DEMO_NAME)
        answer = admin.put(f"/connections/{cid}/inbound-auth", json={"auth": "holovitals_hmac"})
        answer.raise_for_status()
        return cid, answer.json()["secret"]


def _query(product: DemoProduct, sql: str, *args: object) -> list[tuple]:
    """Rows from the product's database (`?` placeholders), SQLite file or PostgreSQL."""
    url = product.env.get("HOLOVITALS_DATABASE_URL")
    if url is None:
        with contextlib.closing(sqlite3.connect(product.data / "holovitals.db", timeout=60)) as db:
            return db.execute(sql, args).fetchall()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(sql.replace("?", "%s"), args)]
    finally:
        engine.dispose()


def exactly_once(
    product: DemoProduct, acknowledged: list[int], first_event: int, first_job: int
) -> dict[str, Any]:
    """Wait until every acknowledged event is processed; then check each was, once."""
    wanted = set(acknowledged)
    began = time.monotonic()
    states: dict[str, int] = {}
    while time.monotonic() - began < DRAIN_TIMEOUT:
        rows = _query(product, "SELECT id, status FROM inbound_event WHERE id >= ?", first_event)
        mine = [status for event_id, status in rows if event_id in wanted]
        states = {s: mine.count(s) for s in set(mine)}
        if len(mine) == len(wanted) and states == {"processed": len(wanted)}:
            break
        time.sleep(2)
    drained = time.monotonic() - began
    rows = _query(
        product, "SELECT id, status, job_id FROM inbound_event WHERE id >= ?", first_event
    )
    named = {job for _id, _status, job in rows if job is not None}
    mine = {event_id: job for event_id, _status, job in rows if event_id in wanted}
    # Jobs events made in the run. HL7 messages ask for jobs through the same path (the
    # demo's sandbox sends an ADT feed), under the same kind but their own `requested_by`.
    by_events = (
        "SELECT id FROM sync_job WHERE requested_by_kind = 'webhook'"
        " AND requested_by LIKE 'inbound-event:%' AND id >= ?"
    )
    made = {job for (job,) in _query(product, by_events, first_job)}
    # An event may join a patient's sync that is still queued, made before the run or by an
    # HL7 message: named, not made here. It must exist, as a job events or messages made.
    joinable = "SELECT id FROM sync_job WHERE requested_by_kind = 'webhook'"
    joined = named - made
    missing = joined - {job for (job,) in _query(product, joinable)}
    # And the other way: an event stored before the run and processed during it makes a job
    # here that only that earlier event names. A job no event names at all would be one
    # made by an event processed twice.
    before = "SELECT DISTINCT job_id FROM inbound_event WHERE id < ? AND job_id >= ?"
    named_before = {job for (job,) in _query(product, before, first_event, first_job)} & made
    unnamed = made - named - named_before
    ok = (
        len(acknowledged) == len(wanted)
        and states == {"processed": len(wanted)}
        and len(mine) == len(wanted)
        and None not in mine.values()
        and not unnamed
        and not missing
    )
    if not ok:  # ids only
        print(
            f"exactly once: no: jobs no event names {sorted(unnamed)[:10]},"
            f" named jobs that do not exist {sorted(missing)[:10]}",
            file=sys.stderr,
            flush=True,
        )
    return {
        "exactly_once": ok,
        "acknowledged": len(acknowledged),
        "states": states,
        "duplicate_acks": len(acknowledged) - len(wanted),
        "jobs_made": len(made),
        "jobs_named": len(named),
        "jobs_joined": len(joined),
        "jobs_made_for_events_from_before": len(named_before),
        "drain_s": round(drained, 1),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def emit(metric: str, value: float, unit: str, n: int, **extra: Any) -> None:
    line = {
        "bench": "webhooks",
        "metric": metric,
        "value": value,
        "unit": unit,
        "n": n,
        "commit": commit_sha(),
        **extra,
    }
    print(orjson.dumps(line).decode(), flush=True)


def compare(quick: bool, postgres: bool = False) -> None:
    """Start the product and the bare endpoint, load both in turns, print JSON lines.

    postgres: the product on a scratch PostgreSQL database instead of its SQLite file.
    """
    url, drop = fresh_postgres("hv_bench_webhooks") if postgres else (None, None)
    try:
        _compare(quick, url)
    finally:
        if drop is not None:
            drop()


def _compare(quick: bool, database_url: str | None) -> None:
    rounds, seconds = (1, 4.0) if quick else (3, 8.0)
    env = {"HOLOVITALS_DATABASE_URL": database_url} if database_url else {}
    with tempfile.TemporaryDirectory(prefix="hv-bench-webhooks-closed-") as tmp:
        product = DemoProduct(Path(tmp), None, env, prod=True)
        bare_proc = None
        try:
            product.wait_ready()
            health = httpx.get(f"{product.api}/health", timeout=10).json()
            workers = {f: q["workers"] for f, q in health["queues"].items()}
            backends = cores()  # what `up --prod` runs (HOLOVITALS_BACKEND_WORKERS' default)
            cid, secret = inbound_secret(product)
            bare_proc, bare_port = start_bare(product, secret, backends, Path(tmp) / "bare.log")
            receiver = Target("receiver", product.front, f"/api/webhooks/inbound/{cid}", secret)
            bare = Target("bare", bare_port, "/", secret)
            first_event = _query(product, "SELECT COALESCE(MAX(id), 0) + 1 FROM inbound_event")
            first_job = _query(product, "SELECT COALESCE(MAX(id), 0) + 1 FROM sync_job")
            rates = {
                "receiver": load(receiver, WARM_UP, 2000, measured=False),
                "bare": load(bare, WARM_UP, 2000, measured=False),
            }
            for _ in range(rounds):
                for target in (receiver, bare):
                    rates[target.name] = load(target, seconds, rates[target.name], measured=True)
            loadavg = round(os.getloadavg()[0], 2)
            checked = exactly_once(product, receiver.event_ids, first_event[0][0], first_job[0][0])
            queued_bare = redis.Redis(unix_socket_path=str(product.data / "redis.sock")).llen(
                "bench:bare:queue"
            )
        finally:
            if bare_proc is not None:
                bare_proc.terminate()
                bare_proc.wait(30)
            product.stop()
    extra = {
        "connections": CONNECTIONS,
        "backend_workers": backends,
        "workers": workers,
        "rounds": rounds,
        "round_s": seconds,
        "mode": "prod",
        "loadavg_1m": loadavg,
        "database": "postgresql" if database_url else "sqlite",
    }
    ratio = round(receiver.rate() / bare.rate(), 2) if bare.rate() else 0.0
    emit(
        "closed_loop_rps",
        round(receiver.rate(), 1),
        "events/s",
        len(receiver.latencies),
        baseline=round(bare.rate(), 1),
        ratio=ratio,
        target=0.7,
        statuses={str(k): v for k, v in receiver.statuses.items()},
        bare_statuses={str(k): v for k, v in bare.statuses.items()},
        bare_queued=queued_bare,
        exhausted_rounds=receiver.exhausted + bare.exhausted,
        **extra,
    )
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        emit(
            f"closed_loop_latency_{name}_ms",
            round(percentile(receiver.latencies, q) * 1000, 2),
            "ms",
            len(receiver.latencies),
            baseline=round(percentile(bare.latencies, q) * 1000, 2),
            **extra,
        )
    emit(
        "closed_loop_processed",
        checked.pop("acknowledged"),
        "events",
        len(receiver.event_ids),
        **checked,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round per target")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="the product on a scratch PostgreSQL database (127.0.0.1:5432)",
    )
    args = parser.parse_args()
    compare(args.quick, args.postgres)


if __name__ == "__main__":
    main()
