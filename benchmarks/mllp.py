"""Benchmark of the MLLP listener for HL7 v2 ADT feeds, over loopback.

    python benchmarks/mllp.py [--quick] [--only throughput|kill|latency]

Starts `holovitals-sync mllp` (one process) on a free loopback port with a fresh SQLite
database in a temporary directory (HOLOVITALS_BENCH_DATABASE_URL for PostgreSQL) and the
machine's Redis (HOLOVITALS_BENCH_REDIS_URL, default db 10; only the listener's `hl7:` keys
are touched), one connection and one feed.

- throughput: 32 senders, each an MLLP connection sending distinct ADT^A08 messages in
  original mode (the next message after the previous one's ACK), as interface engines do;
  acknowledged messages per second, ACK latency p50/p99, and `stored` (rows found in the
  database, must equal `acked`). The senders run as asyncio tasks in one process of their
  own (python-hl7's MLLP streams, ACKs read as frames), so the listener keeps a core.
- kill: the same 32 senders; when a third is acknowledged the listener gets SIGKILL and is
  started again; each sender resends the message whose AA it never got. `lost` and
  `duplicates` count what the database holds against what was sent (both must be 0).
- latency: the sandbox EHR, RQ workers and the listener; a patient's birth date changes at
  the EHR, then an A08 about the patient arrives; the time until the changed record is
  stored here (p50/p95 over the trials), with the default coalescing window.

No RQ workers run in the first two: they measure acknowledging, not processing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
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

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SENDERS = 32
MRN_SYSTEM_OID = "2.16.840.1.113883.3.7418.1.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def emit(metric: str, value: float, unit: str, **extra: Any) -> None:
    print(
        orjson.dumps(
            {
                "bench": "mllp",
                "metric": metric,
                "value": round(value, 2),
                "unit": unit,
                **extra,
                "commit": commit_sha(),
            }
        ).decode(),
        flush=True,
    )


def message(control_id: str, mrn: str = "MRN0000001", trigger: str = "A08") -> bytes:
    return (
        "MSH|^~\\&|BENCHADT|BENCH|HOLOVITALS|HV|20260101120000||"
        f"ADT^{trigger}^ADT_A01|{control_id}|P|2.5.1\r"
        f"EVN|{trigger}|20260101120000\r"
        f"PID|1||{mrn}^^^SANDBOX&{MRN_SYSTEM_OID}&ISO^MR||DOE^JANE^Q||19700101|F|||"
        "123 MAIN ST^^BOSTON^MA^02110^US||555-555-5555\r"
        "PV1|1|I|4N^401^A^BENCH||||1234^SMITH^JOHN^^^DR|||MED||||1\r"
    ).encode()


class Listener:
    """`holovitals-sync mllp` as a process of its own."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.port = env, log, free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "holovitals-sync"), "mllp", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"the listener did not start; see {self.log}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)


def prepare(tmp: Path, redis_url: str) -> tuple[dict[str, str], int]:
    """Environment for the listener (and workers), a migrated database, one connection."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLOVITALS_")}
    database = os.environ.get("HOLOVITALS_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
    env.update(
        HOLOVITALS_DATA_DIR=str(tmp / "data"),
        HOLOVITALS_DATABASE_URL=database,
        HOLOVITALS_REDIS_URL=redis_url,
        HOLOVITALS_LOG_LEVEL="WARNING",
    )
    os.environ.update(env)
    from holovitals_sync import migrations
    from holovitals_sync.config import get_settings

    get_settings.cache_clear()
    migrations.upgrade(database)
    return env, 0


def use_database(url: str) -> None:
    """Migrate `url` and point this process at it."""
    from holovitals_sync import migrations
    from holovitals_sync.config import get_settings
    from holovitals_sync.db import get_engine

    os.environ["HOLOVITALS_DATABASE_URL"] = url
    get_settings.cache_clear()
    get_engine.cache_clear()
    migrations.upgrade(url)


def clear_redis(url: str) -> None:
    """The listener's keys only (the pending list, counters, caches)."""
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match="hl7:*", count=1000):
        client.delete(key)


def add_connection(base_url: str, application: str = "BENCHADT") -> int:
    from holovitals_sync.db import session_scope
    from holovitals_sync.models import AuthMethod, HL7Feed, Vendor
    from holovitals_sync.services import audit
    from holovitals_sync.services.connections import ConnectionIn, create_connection

    with session_scope() as session:
        row = create_connection(
            session,
            data=ConnectionIn(
                name=f"Bench {application} {time.time_ns()}",
                vendor=Vendor.GENERIC,
                base_url=base_url,
                client_id="holovitals-demo",
                auth_method=AuthMethod.CLIENT_SECRET_BASIC,
                client_secret="demo-secret",
                scopes="system/*.read system/*.write",
            ),
            actor=audit.Actor.system("bench"),
        )
        session.flush()
        session.add(
            HL7Feed(connection_id=row.id, sending_application=application, sending_facility="BENCH")
        )
        return int(row.id)


def stored_counts() -> tuple[int, int]:
    """(rows, distinct control ids) in hl7_message."""
    import sqlalchemy as sa

    from holovitals_sync.db import get_engine

    with get_engine().connect() as conn:
        rows, distinct = conn.execute(
            sa.text("SELECT COUNT(*), COUNT(DISTINCT control_id) FROM hl7_message")
        ).one()
    return int(rows), int(distinct)


async def sender(
    port: int, frames: list[bytes], latencies: list[float], acked: list[int], deadline: float
) -> int:
    """Send in original mode; reconnect and resend on a lost connection; how many left."""
    from hl7.mllp import open_hl7_connection

    pending = list(frames)
    while pending and time.monotonic() < deadline:
        try:
            reader, writer = await open_hl7_connection("127.0.0.1", port, limit=1 << 20)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        try:
            while pending:
                sent = time.perf_counter()
                writer.writeblock(pending[0])
                await writer.drain()
                ack = await asyncio.wait_for(reader.readblock(), 30)
                if b"MSA|AA|" not in ack:
                    raise SystemExit(f"not acknowledged: {ack[:200]!r}")
                latencies.append(time.perf_counter() - sent)
                pending.pop(0)
                acked[0] += 1
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            await asyncio.sleep(0.05)
        finally:
            writer.close()
    return len(pending)


def run_senders(
    port: int, per_sender: int, tag: str, on_progress: Any = None
) -> tuple[float, list[float], int]:
    """(seconds, latencies, left unacknowledged) of SENDERS senders."""
    import uvloop

    frames = [
        [message(f"{tag}{n:02d}-{i:06d}", f"MRN{n:03d}{i:05d}") for i in range(per_sender)]
        for n in range(SENDERS)
    ]
    latencies: list[float] = []
    acked = [0]

    async def main() -> int:
        deadline = time.monotonic() + 600
        tasks = [asyncio.create_task(sender(port, f, latencies, acked, deadline)) for f in frames]
        if on_progress is not None:
            tasks.append(asyncio.create_task(on_progress(acked)))
        results = await asyncio.gather(*tasks)
        return sum(r or 0 for r in results[:SENDERS])

    started = time.perf_counter()
    left = uvloop.run(main())
    return time.perf_counter() - started, latencies, left


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def throughput(tmp: Path, env: dict[str, str], quick: bool) -> None:
    add_connection("https://fhir.example.org/r4")
    listener = Listener(env, tmp / "mllp-throughput.log")
    listener.start()
    try:
        run_senders(listener.port, 20, "W")  # warm-up: connections, caches, the WAL
        before_rows = stored_counts()[0]
        cpu = listener.cpu_seconds()
        per_sender = 150 if quick else 1500
        seconds, latencies, left = run_senders(listener.port, per_sender, "T")
        cpu = listener.cpu_seconds() - cpu
    finally:
        listener.stop()
    acked = len(latencies)
    stored = stored_counts()[0] - before_rows
    emit("acked_per_s", acked / seconds, "messages/s", n=acked, senders=SENDERS)
    emit("ack_latency_p50_ms", percentile(latencies, 50) * 1000, "ms", n=acked)
    emit("ack_latency_p99_ms", percentile(latencies, 99) * 1000, "ms", n=acked)
    emit("listener_cpu_per_message_us", cpu / max(acked, 1) * 1e6, "us", n=acked)
    emit("stored", stored, "messages", sent=acked, unacknowledged=left)


def kill_restart(tmp: Path, env: dict[str, str], quick: bool) -> None:
    listener = Listener(env, tmp / "mllp-kill.log")
    listener.start()
    per_sender = 60 if quick else 300
    total = SENDERS * per_sender
    rows_before, _ = stored_counts()

    async def killer(acked: list[int]) -> None:
        while acked[0] < total // 3:
            await asyncio.sleep(0.005)
        await asyncio.to_thread(listener.kill)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(listener.start)

    try:
        _, _, left = run_senders(listener.port, per_sender, "K", killer)
    finally:
        listener.stop()
    import sqlalchemy as sa

    from holovitals_sync.db import get_engine

    with get_engine().connect() as conn:
        rows, distinct = conn.execute(
            sa.text(
                "SELECT COUNT(*), COUNT(DISTINCT control_id) FROM hl7_message "
                "WHERE control_id LIKE 'K%'"
            )
        ).one()
    emit("kill_restart_lost", total - distinct, "messages", sent=total, unacknowledged=left)
    emit("kill_restart_duplicates", rows - distinct, "messages", sent=total)
    del rows_before


def latency(tmp: Path, env: dict[str, str], quick: bool) -> None:
    """A08 to the changed Patient stored, against the sandbox with workers running."""
    import sqlalchemy as sa

    from holovitals_sync.db import get_engine
    from holovitals_sync.sandbox.config import SandboxConfig
    from holovitals_sync.sandbox.server import SandboxServer

    # A database of its own: the messages the other parts stored are not for processing.
    database = os.environ.get("HOLOVITALS_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/latency.db"
    env = dict(env, HOLOVITALS_DATABASE_URL=database)
    use_database(database)
    clear_redis(env["HOLOVITALS_REDIS_URL"])
    sandbox = SandboxServer(SandboxConfig(patients=50, seed=7), in_subprocess=True).start()
    cid = add_connection(sandbox.base_url)
    listener = Listener(env, tmp / "mllp-latency.log")
    listener.start()
    worker_env = dict(env, HOLOVITALS_LOG_LEVEL="WARNING")
    pools = [
        subprocess.Popen(
            [
                str(BIN / "rq"),
                "worker-pool",
                "-c",
                "workers.settings",
                "-n",
                "2",
                "-w",
                "workers.worker.HoloVitalsWorker",
                *queues,
            ],
            cwd=ROOT,
            env=worker_env,
            stdout=(tmp / f"workers-{queues[0]}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for queues in (
            ["sync.high", "sync.default", "sync.low"],
            ["webhooks.high", "webhooks.default", "webhooks.low"],
        )
    ]
    token = sandbox.token()
    fhir = httpx.Client(
        base_url=sandbox.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    times: list[float] = []
    trials = 8 if quick else 30
    try:
        time.sleep(8)  # the worker pools' first registration
        for n in range(trials + 2):
            pid = f"pt-{(n % 50) + 1:05d}"
            patient = fhir.get(f"/Patient/{pid}").json()
            mrn = next(i["value"] for i in patient["identifier"] if i["value"].startswith("MRN"))
            patient["birthDate"] = f"19{10 + n % 80:02d}-0{1 + n % 9}-1{n % 10}"
            assert fhir.put(f"/Patient/{pid}", json=patient).is_success
            started = time.perf_counter()
            with socket.create_connection(("127.0.0.1", listener.port)) as sock:
                sock.sendall(b"\x0b" + message(f"L{n:04d}", mrn) + b"\x1c\r")
                assert b"MSA|AA|" in sock.recv(4096)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with get_engine().connect() as conn:
                    body = conn.execute(
                        sa.text(
                            "SELECT remote_body FROM synced_record WHERE connection_id = :c AND "
                            "resource_type = 'Patient' AND remote_id = :p"
                        ),
                        {"c": cid, "p": pid},
                    ).scalar()
                if body is not None:
                    data = body if isinstance(body, dict) else orjson.loads(body)
                    if data.get("birthDate") == patient["birthDate"]:
                        break
                time.sleep(0.01)
            else:
                raise SystemExit(f"trial {n}: the change never arrived; see {tmp}")
            if n >= 2:  # the first two warm the workers' imports and the token cache
                times.append(time.perf_counter() - started)
    finally:
        for pool in pools:
            os.killpg(pool.pid, signal.SIGTERM)
        for pool in pools:
            pool.wait(60)
        listener.stop()
        sandbox.stop()
    emit("a08_to_stored_p50_ms", percentile(times, 50) * 1000, "ms", n=len(times))
    emit("a08_to_stored_p95_ms", percentile(times, 95) * 1000, "ms", n=len(times))
    stages = stage_times()
    for stage, values in stages.items():
        emit(f"stage_{stage}_p50_ms", percentile(values, 50) * 1000, "ms", n=len(values))


def stage_times() -> dict[str, list[float]]:
    """Where an A08's time goes: stored -> processed (the coalescing window, the patient's
    look-up, the sync asked for), job queued -> started (a worker takes it), started ->
    finished (the patient sync itself)."""
    from sqlmodel import select

    from holovitals_sync.db import session_scope
    from holovitals_sync.models import HL7Message, SyncJob

    stages: dict[str, list[float]] = {"processing": [], "pickup": [], "sync": []}
    with session_scope() as session:
        for message in session.exec(select(HL7Message)):
            job = session.get(SyncJob, message.job_id) if message.job_id else None
            if message.processed_at is None or job is None or job.finished_at is None:
                continue
            stages["processing"].append(
                (message.processed_at - message.received_at).total_seconds()
            )
            if job.queued_at and job.started_at:
                stages["pickup"].append((job.started_at - job.queued_at).total_seconds())
                stages["sync"].append((job.finished_at - job.started_at).total_seconds())
    return stages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["throughput", "kill", "latency"])
    args = parser.parse_args()
    # SIGTERM ends the run through its `finally` blocks: listeners, workers, sandbox stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    redis_url = os.environ.get("HOLOVITALS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
    with tempfile.TemporaryDirectory(prefix="hv-bench-mllp-") as name:
        tmp = Path(name)
        env, _ = prepare(tmp, redis_url)
        try:
            for part, run in (
                ("throughput", throughput),
                ("kill", kill_restart),
                ("latency", latency),
            ):
                if args.only in (None, part):
                    run(tmp, env, args.quick)
        finally:
            clear_redis(redis_url)


if __name__ == "__main__":
    main()
