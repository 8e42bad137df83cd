"""Profile one inbound sync job in this process: where its time goes, and its SQL.

    python benchmarks/sync_profile.py [--patients 500] [--db sqlite|postgresql]
        [--job full|search|patient] [--top 30] [--latency-ms 0]

Starts the sandbox (in a subprocess), a private redis-server and a scratch database, then
runs the worker's job function (`runner.run_job`) directly under cProfile, with a
SQLAlchemy listener counting statements by kind. Prints the rate, the statements per batch
and the cProfile table sorted by cumulative and by own time. A tool for finding hot spots:
`benchmarks/sync.py` is the measurement that counts.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync as bench  # noqa: E402 (the sync benchmark's set-up helpers)


def _count_statements(engine: sa.Engine) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()

    def before(_conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any,
               executemany: bool) -> None:
        words = statement.split(None, 3)
        kind = words[0].upper()
        if kind in ("INSERT", "DELETE"):
            kind += " " + words[2]
        elif kind == "UPDATE":
            kind += " " + words[1]
        elif kind == "SELECT":
            low = statement.lower()
            kind += " " + low.split(" from ", 1)[1].split()[0] if " from " in low else ""
        counts[kind + (" (many)" if executemany else "")] += 1

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "commit", lambda _conn: counts.update(["COMMIT"]))
    return counts


def _new_job(connection_id: int, kind: str, patient: str | None) -> list[int]:
    from holovitals_sync.adapters.generic import PROFILE
    from holovitals_sync.db import session_scope
    from holovitals_sync.models import JobType, RequesterKind, SyncJob

    if kind == "full":
        specs: list[dict[str, Any]] = [{"job_type": JobType.FULL}]
    elif kind == "patient":
        specs = [{"job_type": JobType.PATIENT, "patient_id": patient}]
    else:
        specs = [{"job_type": JobType.RESOURCE, "resource_type": t}
                 for t in PROFILE.resource_types]
    ids = []
    with session_scope() as session:
        for spec in specs:
            job = SyncJob(connection_id=connection_id, requested_by_kind=RequesterKind.SYSTEM,
                          requested_by="profile", **spec)
            session.add(job)
            session.flush()
            ids.append(job.id)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--job", choices=("full", "search", "patient"), default="full")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--no-profile", action="store_true", help="time only")
    parser.add_argument("--dump", help="also write the cProfile stats to this file")
    args = parser.parse_args()

    from holovitals_sync.sandbox.config import SandboxConfig
    from holovitals_sync.sandbox.server import SandboxServer

    config = SandboxConfig(patients=args.patients, seed=42, export_polls_before_complete=0,
                           export_retry_after=0.1, max_page_size=1000)
    with SandboxServer(config, in_subprocess=True) as sandbox, \
            tempfile.TemporaryDirectory() as tmp:
        redis_server = bench.start_redis(Path(tmp))
        drop = None
        try:
            if args.db == "sqlite":
                url = f"sqlite:///{tmp}/profile.db"
            else:
                url, drop = bench.fresh_postgres()
            bench.configure(url, tmp)
            from holovitals_sync.db import get_engine
            from holovitals_sync.services.orchestration import runner

            runner.warm_up()
            conn = bench.make_connection(sandbox.base_url, "profile")
            patient = sorted(bench.httpx_ids(sandbox, sandbox.base_url))[0]
            ids = _new_job(conn, args.job, patient)
            if args.latency_ms:
                sandbox.set_faults(latency_ms=args.latency_ms)
            counts = _count_statements(get_engine())
            profile = cProfile.Profile()
            began, cpu = time.perf_counter(), time.process_time()
            if not args.no_profile:
                profile.enable()
            for job_id in ids:
                runner.run_job(job_id)
            profile.disable()
            seconds = time.perf_counter() - began
            print(f"CPU of this process (all threads): {time.process_time() - cpu:.2f}s")
            _report(ids, seconds, counts, profile, args)
        finally:
            if drop is not None:
                drop()
            redis_server.stop()


def _report(ids: list[int], seconds: float, counts: collections.Counter[str],
            profile: cProfile.Profile, args: argparse.Namespace) -> None:
    from sqlmodel import select

    from holovitals_sync.db import session_scope
    from holovitals_sync.models import SyncJob

    with session_scope() as session:
        rows = list(session.exec(select(SyncJob).where(SyncJob.id.in_(ids))))
    fetched = sum(r.fetched for r in rows)
    statuses = {r.status.value for r in rows}
    # Each batch's commit carries one fenced UPDATE of the job row (plus one at the end).
    batches = max(1, counts["UPDATE sync_job"] - 1)
    print(f"{fetched} resources in {seconds:.2f}s = {fetched / seconds:.0f}/s "
          f"(status {statuses}, {batches} batches, ~{fetched // batches} resources each)")
    print(f"statements: {sum(counts.values())} total")
    for kind, n in counts.most_common():
        print(f"  {n:7d}  {n / batches:6.2f}/batch  {kind}")
    if args.no_profile:
        return
    if args.dump:
        profile.dump_stats(args.dump)
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(key).print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
