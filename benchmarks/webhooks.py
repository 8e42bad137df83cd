"""Benchmark of the inbound webhook receiver over loopback, signature checks on.

    python benchmarks/webhooks.py [--quick] [--only open|closed] [--postgres]

Two parts. The open-loop one (below) measures the receiver alone at a fixed offered rate.
The closed-loop comparison (`webhooks_closed_loop.py`, issue #26) runs the whole product as
shipped (`up --demo --prod`, workers busy processing what it acknowledges) and loads its
receiver and a bare endpoint doing the same checks (HMAC, Redis SET NX, LPUSH) in turns with
32 connections, then checks that every acknowledged event was processed exactly once.

Starts the backend (uvicorn serving `create_api()`, `--workers` processes, default 1) on a
free loopback port, with a fresh SQLite database in a temporary directory and the machine's
Redis on a database of its own (HOLOVITALS_BENCH_REDIS_URL, default db 11, flushed). One
connection verifies `X-HoloVitals-Signature` (HMAC-SHA256, timestamp tolerance on).

The sender offers a fixed load: event i is due at start + i / rate, whatever the answers
do (open loop), over keep-alive HTTP/1.1 connections; latency is measured from the moment
an event was due, so queueing in the sender counts against the server. Bodies are distinct
R4 backport notifications (id-only, one of 500 patients), signed before the clock starts.

Metrics: accepted_rps (202 answers per second of the run), latency_p50_ms, latency_p99_ms,
stored (the sent events found in the database afterwards, matched by their keys: warm-up
events and the catch-up rows gap detection adds are not counted; must equal sent), and the
CPU time per event of the backend (all its processes) and of the sender. The machine is
shared, so latency moves with its load; CPU per event does much less. No RQ workers run:
the benchmark measures acknowledging, not processing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
from _common import commit_sha  # noqa: E402 (benchmarks run as scripts)
from webhooks_closed_loop import compare  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("HOLOVITALS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
CONNECTIONS = 16
WARM_UP = 200

try:  # the sender shares the cores with the backend: the leaner its loop, the better
    from uvloop import run
except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
    run = asyncio.run


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(env: dict[str, str]) -> tuple[int, str]:
    """Migrate the database and create a connection with an inbound secret."""
    os.environ.update(env)
    from holovitals_sync import migrations
    from holovitals_sync.db import session_scope
    from holovitals_sync.models import InboundAuth
    from holovitals_sync.services import audit
    from holovitals_sync.services.connections import ConnectionIn, create_connection
    from holovitals_sync.services.webhooks.inbound_config import InboundAuthIn, set_inbound_auth

    migrations.upgrade(env["HOLOVITALS_DATABASE_URL"])
    actor = audit.Actor.system("benchmark")
    with session_scope() as session:
        conn = create_connection(
            session,
            data=ConnectionIn(
                name="Bench EHR", vendor="generic", base_url="https://ehr.example.org/fhir"
            ),
            actor=actor,
        )
        out = set_inbound_auth(
            session,
            connection=conn,
            data=InboundAuthIn(auth=InboundAuth.HOLOVITALS_HMAC),
            actor=actor,
        )
        return conn.id, out.secret


def start_backend(env: dict[str, str], port: int, log: Path, workers: int) -> subprocess.Popen:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "holovitals_sync.api:create_api",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--lifespan",
        "off",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, env={**os.environ, **env}, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/openapi.json", timeout=1).is_success:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"backend did not start; see {log}")


def requests_for(
    n: int, path: str, port: int, secret: str, first: int = 1
) -> tuple[list[bytes], set[str]]:
    """Complete signed HTTP/1.1 requests, built before the clock starts, and the keys their
    events are stored under. Notifications are numbered from `first` on."""
    from holovitals_sync.sandbox import notify
    from holovitals_sync.services.webhooks.notifications import describe

    out, keys = [], set()
    for i in range(n):
        body, ctype = notify.build(
            "event-notification", "id-only", f"Patient/pt-{i % 500:05d}", None, events=first + i
        )
        headers = {
            "Host": f"127.0.0.1:{port}",
            "Content-Type": ctype,
            "Content-Length": str(len(body)),
            **notify.sign(body, secret),
        }
        head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out.append(head.encode() + b"\r\n" + body)
        keys.add(describe(body).key)
    return out, keys


async def _read_response(reader: asyncio.StreamReader) -> int:
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
    await reader.readexactly(length)
    return status


async def offer(
    port: int, requests: list[bytes], rate: float
) -> tuple[list[float], list[int], float]:
    """Send each request when due; returns latencies (s), statuses, and the run's length."""
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    latencies: list[float] = [0.0] * len(requests)
    statuses: list[int] = [0] * len(requests)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            i, due = await queue.get()
            if i < 0:
                break
            writer.write(requests[i])
            statuses[i] = await _read_response(reader)
            latencies[i] = time.perf_counter() - due
        writer.close()

    tasks = [asyncio.create_task(connection()) for _ in range(CONNECTIONS)]
    start = time.perf_counter()
    for i in range(len(requests)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((i, due))
    for _ in tasks:
        queue.put_nowait((-1, 0.0))
    await asyncio.gather(*tasks)
    return latencies, statuses, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def stored_count(database_url: str, sent_keys: set[str]) -> tuple[int, int]:
    """How many of the measured events are stored, and how many other rows there are.

    Matched by key: the table also holds the warm-up events and the `events-missed`
    catch-ups gap detection stores when concurrent connections deliver the numbered
    notifications out of order; neither is an event this run sent.
    """
    import sqlalchemy as sa

    from holovitals_sync.db import create_db_engine

    engine = create_db_engine(database_url)
    with engine.connect() as conn:
        keys = [
            row[0]
            for row in conn.execute(
                sa.text("SELECT event_key FROM inbound_event WHERE status = 'received'")
            )
        ]
    engine.dispose()
    stored = sum(1 for key in keys if key in sent_keys)
    return stored, len(keys) - stored


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (uvicorn --workers forks)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for each in [pid, *map(int, children)]:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run, same metrics")
    parser.add_argument("--rate", type=float, default=1200.0, help="offered events/s")
    parser.add_argument("--workers", type=int, default=1, help="backend processes")
    parser.add_argument(
        "--only",
        choices=("open", "closed"),
        default=None,
        help="only the open-loop run, or only the closed-loop comparison",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="closed loop: the product on a scratch PostgreSQL database",
    )
    args = parser.parse_args()
    if args.only != "closed":
        open_loop(args)
    if args.only != "open":
        compare(args.quick, args.postgres)


def open_loop(args: argparse.Namespace) -> None:
    """The receiver alone (uvicorn, no workers) at a fixed offered rate."""
    seconds = 5 if args.quick else 20
    n = int(args.rate * seconds)
    redis.Redis.from_url(REDIS_URL).flushdb()
    with tempfile.TemporaryDirectory(prefix="hv-bench-webhooks-") as tmp:
        database_url = f"sqlite:///{tmp}/bench.db"
        env = {
            "HOLOVITALS_DATA_DIR": tmp,
            "HOLOVITALS_DATABASE_URL": database_url,
            "HOLOVITALS_REDIS_URL": REDIS_URL,
            "HOLOVITALS_LOG_LEVEL": "WARNING",
        }
        connection_id, secret = prepare(env)
        port = free_port()
        backend = start_backend(env, port, Path(tmp) / "backend.log", args.workers)
        try:
            path = f"/api/webhooks/inbound/{connection_id}"
            warm, _ = requests_for(WARM_UP, path, port, secret)
            run(offer(port, warm, 400.0))  # warm-up, not measured
            requests, sent_keys = requests_for(n, path, port, secret, first=WARM_UP + 1)
            server_cpu, client_cpu = cpu_seconds(backend.pid), time.process_time()
            latencies, statuses, elapsed = run(offer(port, requests, args.rate))
            server_cpu = cpu_seconds(backend.pid) - server_cpu
            client_cpu = time.process_time() - client_cpu
        finally:
            backend.terminate()
            backend.wait(timeout=15)
        accepted = sum(1 for s in statuses if s == 202)
        stored, other_rows = stored_count(database_url, sent_keys)
    # The machine's load average: other processes share these cores (see DESIGN: noisy).
    extra = {
        "offered_rps": args.rate,
        "backend_workers": args.workers,
        "sqlite": True,
        "signature": "hmac-sha256",
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    emit("accepted_rps", round(accepted / elapsed, 1), "events/s", n, **extra)
    emit("latency_p50_ms", round(percentile(latencies, 0.50) * 1000, 2), "ms", n, **extra)
    emit("latency_p99_ms", round(percentile(latencies, 0.99) * 1000, 2), "ms", n, **extra)
    emit("server_cpu_us_per_event", round(server_cpu / n * 1e6, 1), "us", n, **extra)
    emit("client_cpu_us_per_event", round(client_cpu / n * 1e6, 1), "us", n, **extra)
    emit(
        "stored",
        stored,
        "events",
        n,
        sent=n,
        accepted=accepted,
        all_stored=stored == n,
        other_rows=other_rows,
    )


if __name__ == "__main__":
    main()
