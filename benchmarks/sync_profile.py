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

    def before(
        _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, executemany: bool
    ) -> None:
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
        specs = [{"job_type": JobType.RESOURCE, "resource_type": t} for t in PROFILE.resource_types]
    ids = []
    with session_scope() as session:
        for spec in specs:
            job = SyncJob(
                connection_id=connection_id,
                requested_by_kind=RequesterKind.SYSTEM,
                requested_by="profile",
                **spec,
            )
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
    parser.add_argument(
        "--stages",
        action="store_true",
        help="no cProfile: CPU and wall time per stage of the batch loop",
    )
    parser.add_argument("--dump", help="also write the cProfile stats to this file")
    args = parser.parse_args()

    from holovitals_sync.sandbox.config import SandboxConfig
    from holovitals_sync.sandbox.server import SandboxServer

    config = SandboxConfig(
        patients=args.patients,
        seed=42,
        export_polls_before_complete=0,
        export_retry_after=0.1,
        max_page_size=1000,
    )
    with SandboxServer(config, in_subprocess=True) as sandbox, tempfile.TemporaryDirectory() as tmp:
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
            stages = _time_stages() if args.stages else None
            began, cpu = time.perf_counter(), time.process_time()
            main_cpu = time.thread_time()
            if not (args.no_profile or args.stages):
                profile.enable()
            for job_id in ids:
                runner.run_job(job_id)
            profile.disable()
            seconds = time.perf_counter() - began
            total_cpu = time.process_time() - cpu
            print(
                f"CPU of this process (all threads): {total_cpu:.2f}s, of which the "
                f"job's thread {time.thread_time() - main_cpu:.2f}s"
            )
            _report(ids, seconds, counts, profile, args)
            if stages is not None:
                _print_stages(stages, seconds)
        finally:
            if drop is not None:
                drop()
            redis_server.stop()


def _report(
    ids: list[int],
    seconds: float,
    counts: collections.Counter[str],
    profile: cProfile.Profile,
    args: argparse.Namespace,
) -> None:
    from sqlmodel import select

    from holovitals_sync.db import session_scope
    from holovitals_sync.models import SyncJob

    with session_scope() as session:
        rows = list(session.exec(select(SyncJob).where(SyncJob.id.in_(ids))))
    fetched = sum(r.fetched for r in rows)
    statuses = {r.status.value for r in rows}
    # Each batch's commit carries one fenced UPDATE of the job row (plus one at the end).
    batches = max(1, counts["UPDATE sync_job"] - 1)
    print(
        f"{fetched} resources in {seconds:.2f}s = {fetched / seconds:.0f}/s "
        f"(status {statuses}, {batches} batches, ~{fetched // batches} resources each)"
    )
    print(f"statements: {sum(counts.values())} total")
    for kind, n in counts.most_common():
        print(f"  {n:7d}  {n / batches:6.2f}/batch  {kind}")
    if args.no_profile or args.stages:
        return
    if args.dump:
        profile.dump_stats(args.dump)
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(key).print_stats(args.top)
        print(out.getvalue())


# (module, attribute) of the batch loop's stages, wrapped where their callers look them up.
_STAGES = (
    ("holovitals_sync.services.orchestration.inbound", "apply_batch"),
    # Processing runs in the prefetch thread (its wall time overlaps the writer's).
    ("holovitals_sync.services.orchestration.pipeline", "screen"),
    ("holovitals_sync.services.orchestration.pipeline", "validate_batch"),
    ("holovitals_sync.services.orchestration.inbound", "prepare"),
    ("holovitals_sync.services.orchestration.inbound", "record_issues"),
    ("holovitals_sync.services.orchestration.pipeline", "new_issues"),
    ("holovitals_sync.services.orchestration.pipeline", "persist_errors"),
    ("holovitals_sync.services.orchestration.inbound", "upsert_batch"),
    ("holovitals_sync.services.orchestration.upsert", "_existing"),
    ("holovitals_sync.services.orchestration.upsert", "_write_sqlite"),
    ("holovitals_sync.services.orchestration.upsert", "_write_counted"),
    ("holovitals_sync.services.orchestration.inbound", "_announce"),
    ("holovitals_sync.services.orchestration.lifecycle", "fence"),
    ("holovitals_sync.services.orchestration.runner", "_complete"),
)


def _time_stages() -> dict[str, list[float]]:
    """Wrap each stage to sum its calls, wall seconds and its thread's CPU seconds."""
    import functools
    import importlib

    totals: dict[str, list[float]] = {}
    for module_name, name in _STAGES:
        module = importlib.import_module(module_name)
        original = getattr(module, name)
        entry = totals.setdefault(f"{module_name.rsplit('.', 1)[1]}.{name}", [0, 0.0, 0.0])

        def timed(*args: Any, _f: Any = original, _e: list[float] = entry, **kw: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return _f(*args, **kw)
            finally:
                _e[0] += 1
                _e[1] += time.perf_counter() - wall
                _e[2] += time.thread_time() - cpu

        setattr(module, name, functools.wraps(original)(timed))
    return totals


def _print_stages(totals: dict[str, list[float]], seconds: float) -> None:
    print(f"{'stage':42s} {'calls':>6s} {'wall s':>7s} {'cpu s':>7s}  (run: {seconds:.2f}s)")
    for name, (calls, wall, cpu) in totals.items():
        print(f"{name:42s} {int(calls):6d} {wall:7.3f} {cpu:7.3f}")


if __name__ == "__main__":
    main()
