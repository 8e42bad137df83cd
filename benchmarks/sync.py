"""End-to-end inbound sync benchmark: sandbox EHR -> RQ worker -> SQLite / PostgreSQL.

    python benchmarks/sync.py [--quick] [--only inbound|speedup|large ...] [--large]

Starts the sandbox in its own process (500 patients, ~20,000 resources; --quick: 50), a
private redis-server (or HOLOVITALS_BENCH_REDIS_URL, flushed) and PostgreSQL
(HOLOVITALS_TEST_PG_URL admin URL; a scratch database is created and dropped), and
prints one JSON line per metric:

- inbound_rps_{sqlite,postgresql}: a full sync (bulk NDJSON) by one `rq worker`, from the
  job's start to its end; baseline: the naive loop (fetch a page, then add and commit each
  resource through the ORM) over the same data in the same run; ratio = value / baseline.
- inbound_search_rps_sqlite: the same data by paged search (one resource-type job per type).
- worker_peak_rss_mb: the largest memory of the worker and its work horse during the runs,
  as PSS (the horse shares the worker's pages copy-on-write: summed RSS counted them twice).
- speedup_{1,2,3,5}_workers: patient jobs with 100 ms sandbox latency per request on
  PostgreSQL, against a sandbox in a vendor mode without `$everything` (a delayed search
  per resource type per job, so the run is I/O-bound as the scaling target assumes), by
  1, 2, 3 and 5 workers (connection concurrency limit 5); the baseline is the one-worker
  rate of the same run. Workers are started and registered before the jobs
  are queued, so start-up is not measured. Each line also says how I/O-bound the run
  really was (CPU used, FHIR calls per job, the CPU ceiling: see `speedup_curve`).
- split_{1,4}_workers (--only split): one full sync of 5,000 patients (--quick: 500) by one
  worker, then by four, against a sandbox whose search pages cost what offset paging costs
  on a real server (`SPLIT_COST`) plus 100 ms latency per request, in the NextGen mode (a
  search per resource type, no `$export`), on PostgreSQL; the connection allows 16 requests
  at once. One worker runs the whole job with its parallel streams; four share it as parts
  (#23). The ratio's baseline is the one-worker rate of the same run. Then the same by a
  Bulk Data export answered at once (generic mode, no latency; files of 10,000 resources,
  parts are groups of them).
- with --large (or --only large): worker_peak_rss_large_mb for one full sync of ~20k and
  ~200k resources into PostgreSQL, and rss_growth_large (% from the first to the second);
  --million: the same at ~20k and ~1,000,000 (22,500 patients; the sandbox alone holds
  several GB while it serves them).

    python benchmarks/sync.py --quick --only speedup     # just the scaling curve
    python benchmarks/sync.py --large                    # just the memory check
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import _common  # noqa: E402 (benchmarks run as scripts)
import orjson
import psutil
import redis
from _common import commit_sha  # noqa: E402 (benchmarks run as scripts)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# A private redis-server unless one is named: a shared Redis has other runs' jobs and flushes.
REDIS_URL = os.environ.get("HOLOVITALS_BENCH_REDIS_URL", "")
RQ = str(Path(sys.executable).parent / "rq")
QUEUES = ["sync.high", "sync.default", "sync.low"]
LATENCY_MS = 100
SPEEDUP_LIMIT = 5  # the connection's concurrency limit: no gain is possible past it
# The scaling curve is about I/O-bound sync. Against the generic sandbox a patient job is one
# `$everything` call, so CPU (parse, store) dominates and 2 cores cap the curve; a vendor mode
# without `$everything` (NextGen: client secret, no required search parameters) makes each
# patient job a search per resource type, each delayed, as the scenario has it.
SPEEDUP_VENDOR = "nextgen"


def emit(metric: str, value: float, unit: str, n: int, **extra: Any) -> None:
    line = {
        "bench": "sync",
        "metric": metric,
        "value": round(value, 1),
        "unit": unit,
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in extra.items()},
        "n": n,
        "commit": SHA,
    }
    print(orjson.dumps(line).decode(), flush=True)


SHA = commit_sha()


class Workers:
    """`rq worker` processes; tracks the peak memory (PSS) of each worker plus its horse."""

    def __init__(self, count: int) -> None:
        argv = [
            RQ,
            "worker",
            "-c",
            "workers.settings",
            "--with-scheduler",
            "-w",
            "workers.worker.HoloVitalsWorker",
            "-q",
            *QUEUES,
        ]
        self.procs = [
            subprocess.Popen(
                argv,
                env=dict(os.environ),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(count)
        ]
        self.peak_rss = 0
        # CPU of the workers and their work horses from registration (start-up excluded,
        # as it is from the measured span) to stop().
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            for proc in self.procs:
                try:
                    tree = psutil.Process(proc.pid)
                    # PSS: the work horse is forked from the worker and shares most of its
                    # pages; summing RSS would count each shared page twice.
                    rss = sum(p.memory_full_info().pss for p in [tree, *tree.children(True)])
                except psutil.Error:
                    continue
                self.peak_rss = max(self.peak_rss, rss)
            time.sleep(0.2)

    def wait_registered(self, timeout: float = 120.0) -> None:
        """Block until every worker has registered in Redis (ready to take jobs)."""
        from rq import Worker

        conn = redis.Redis.from_url(REDIS_URL)
        deadline = time.monotonic() + timeout
        while Worker.count(connection=conn) < len(self.procs):
            if time.monotonic() > deadline:
                raise SystemExit("workers did not register in time")
            if any(proc.poll() is not None for proc in self.procs):
                raise SystemExit("a worker exited during start-up")
            time.sleep(0.1)
        self.cpu_seconds = -sum(_tree_cpu(proc.pid) for proc in self.procs)

    def stop(self) -> None:
        self._stop.set()
        self.cpu_seconds += sum(_tree_cpu(proc.pid) for proc in self.procs)
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                # A warm shutdown still finishing a job's aftermath on a loaded machine: the
                # measurement is over, so end the worker and its work horse.
                for child in psutil.Process(proc.pid).children(recursive=True):
                    child.kill()
                proc.kill()
                proc.wait(timeout=30)


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a worker, its finished work horses and a running one."""
    try:
        proc = psutil.Process(pid)
        times = proc.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in proc.children(recursive=True):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    except psutil.Error:
        return 0.0
    return total


def configure(database_url: str, data_dir: str) -> None:
    """Point this process and the workers it starts at one database and Redis."""
    from holovitals_sync import migrations
    from holovitals_sync.config import get_settings
    from holovitals_sync.db import get_engine
    from holovitals_sync.services.platform.redis import redis_connection

    os.environ.update(
        HOLOVITALS_DATABASE_URL=database_url,
        HOLOVITALS_REDIS_URL=REDIS_URL,
        HOLOVITALS_DATA_DIR=data_dir,
    )
    get_settings.cache_clear()
    get_engine.cache_clear()
    redis_connection.cache_clear()
    redis.Redis.from_url(REDIS_URL).flushdb()
    migrations.upgrade(database_url)


def make_connection(base_url: str, name: str, limit: int = 5) -> int:
    from holovitals_sync.db import session_scope
    from holovitals_sync.services import audit
    from holovitals_sync.services.connections import ConnectionIn, create_connection

    data = ConnectionIn(
        name=name,
        vendor="generic",
        base_url=base_url,
        client_id="holovitals-demo",
        client_secret="demo-secret",
        scopes="system/*.read",
        concurrency_limit=limit,
    )
    with session_scope() as session:
        return create_connection(session, data=data, actor=audit.Actor.system("bench")).id


def run_jobs(
    connection_id: int, specs: list[dict[str, Any]], workers: int
) -> tuple[int, float, int]:
    """Start `workers` workers, then the jobs; (resources, seconds, peak RSS).

    The jobs are queued only once every worker has registered (imports and warm-up done),
    so the measured span is sync work, not worker start-up competing with the first jobs.
    """
    rows, peak = run_jobs_rows(connection_id, specs, workers)
    began = min(r.started_at for r in rows)
    ended = max(r.finished_at for r in rows)
    return sum(r.fetched for r in rows), (ended - began).total_seconds(), peak


def run_jobs_rows(
    connection_id: int,
    specs: list[dict[str, Any]],
    workers: int,
    usage: dict[str, float] | None = None,
) -> tuple[list[Any], int]:
    """The finished SyncJob rows of `specs` run by `workers` workers, and the peak RSS.

    `usage`, when given, receives the workers' CPU seconds ("cpu_s").
    """
    from sqlmodel import select

    from holovitals_sync.db import session_scope
    from holovitals_sync.models import RequesterKind, SyncJob
    from holovitals_sync.services import audit
    from holovitals_sync.services.orchestration import JobRequest, start_job

    pool = Workers(workers)
    try:
        pool.wait_registered()
        ids = []
        with session_scope() as session:
            for spec in specs:
                job = start_job(
                    session,
                    request=JobRequest(connection_id=connection_id, **spec),
                    requested_by_kind=RequesterKind.SYSTEM,
                    requested_by="bench",
                    actor=audit.Actor.system("bench"),
                )
                ids.append(job.id)
        while True:
            with session_scope() as session:
                rows = list(session.exec(select(SyncJob).where(SyncJob.id.in_(ids))))
                session.expunge_all()
            if all(r.status.finished for r in rows):
                break
            time.sleep(0.2)
    finally:
        pool.stop()
        if usage is not None:
            usage["cpu_s"] = pool.cpu_seconds
    failed = [r.id for r in rows if r.status.value != "completed"]
    if failed:
        raise SystemExit(f"jobs failed: {failed}: {[r.last_error for r in rows]}")
    return rows, pool.peak_rss


def naive_baseline(base_url: str, connection_id: int, limit: int) -> tuple[int, float]:
    """Fetch a page, then add and commit each resource through the ORM (no batching)."""
    from sqlmodel import select

    from holovitals_sync.adapters import adapter_for, content_hash
    from holovitals_sync.db import session_scope
    from holovitals_sync.models import EHRConnection, SyncedRecord
    from holovitals_sync.services.connection_spec import connection_spec

    with session_scope() as session:
        spec = connection_spec(session.get(EHRConnection, connection_id))
    count, began = 0, time.perf_counter()
    with adapter_for(spec) as adapter, session_scope() as session:
        for page in adapter.fetch_full(list(adapter.profile.resource_types)):
            for res in page.resources:
                found = session.exec(
                    select(SyncedRecord).where(
                        SyncedRecord.connection_id == connection_id,
                        SyncedRecord.resource_type == res["resourceType"],
                        SyncedRecord.remote_id == res["id"],
                    )
                ).first()
                row = found or SyncedRecord(
                    connection_id=connection_id,
                    resource_type=res["resourceType"],
                    remote_id=res["id"],
                )
                # What the engine stores too: the body once (base and local NULL).
                row.remote_body = res
                row.content_hash = content_hash(res)
                session.add(row)
                session.commit()
                count += 1
                if count >= limit:
                    return count, time.perf_counter() - began
    return count, time.perf_counter() - began


def fresh_postgres() -> tuple[str, Any]:
    """A scratch database; dropping it first closes this process's engine on it."""
    url, drop_database = _common.fresh_postgres()

    def drop() -> None:
        from holovitals_sync.db import get_engine

        get_engine().dispose()
        drop_database()

    return url, drop


def inbound(base_url: str, db: str, url: str, tmp: str, baseline_limit: int) -> int:
    configure(url, tmp)
    conn = make_connection(base_url, "bench-full")
    count, seconds, rss = run_jobs(conn, [{"job_type": "full"}], workers=1)
    other = make_connection(base_url, "bench-naive")
    naive_n, naive_s = naive_baseline(base_url, other, baseline_limit)
    rate, naive = count / seconds, naive_n / naive_s
    emit(
        f"inbound_rps_{db}",
        rate,
        "resources/s",
        count,
        baseline=round(naive, 1),
        ratio=rate / naive,
        baseline_n=naive_n,
        seconds=seconds,
    )
    return rss


def search(base_url: str, url: str, tmp: str) -> int:
    from holovitals_sync.adapters.generic import PROFILE

    configure(url, tmp)
    conn = make_connection(base_url, "bench-search", limit=1)
    specs = [{"job_type": "resource", "resource_type": t} for t in PROFILE.resource_types]
    count, seconds, rss = run_jobs(conn, specs, workers=1)
    emit("inbound_search_rps_sqlite", count / seconds, "resources/s", count, seconds=seconds)
    return rss


def speedup(tmp: str, patients: int, counts: tuple[int, ...] = (1, 2, 3, 5)) -> None:
    """The scaling curve against its own sandbox in `SPEEDUP_VENDOR` mode (no `$everything`)."""
    from holovitals_sync.sandbox.config import SandboxConfig
    from holovitals_sync.sandbox.server import SandboxServer

    config = SandboxConfig(patients=patients, seed=42, vendor=SPEEDUP_VENDOR, max_page_size=1000)
    with SandboxServer(config, in_subprocess=True) as sandbox:
        speedup_curve(sandbox, sandbox.base_url, tmp, patients, counts)


def speedup_curve(
    sandbox: Any, base_url: str, tmp: str, patients: int, counts: tuple[int, ...] = (1, 2, 3, 5)
) -> None:
    """Patient jobs at 100 ms sandbox latency, on PostgreSQL, by 1, 2, 3 and 5 workers.

    Each count gets a fresh database and the same patients; the one-worker rate measured
    in the same run is the baseline of every ratio (the machine is shared: absolute
    rates drift between runs, ratios much less).

    The sandbox adds its latency with `asyncio.sleep` (requests wait side by side), so
    the workers' waits overlap; what does not overlap is CPU. Each line therefore also
    says what the run used:

    - `cpu_s`: CPU seconds of the workers (with their work horses) and the sandbox;
      `cpu_busy` = cpu_s / (seconds x cores), near 1 when the run was CPU-bound.
    - `machine_busy`: the whole machine's CPU share over the run (PostgreSQL and other
      tenants included); near 1 with a low `cpu_busy`, the run waited for others' CPU.
    - `fhir_calls_per_job`: the FHIR calls the latency applies to, made one after the
      other; `io_floor_s` is the job time that latency alone imposes.
    - `cpu_ceiling`: the speed-up over the one-worker rate that the cores allow at the
      measured CPU per job; no number of workers can beat it.
    """
    sandbox.set_faults(latency_ms=LATENCY_MS)
    ids = sorted(httpx_ids(sandbox, base_url))[:patients]
    specs = [{"job_type": "patient", "patient_id": p} for p in ids]
    cores = psutil.cpu_count() or 1
    sandbox_proc = psutil.Process(sandbox._process.pid) if sandbox._process else None
    base_rate = 0.0
    try:
        for n_workers in counts:
            url, drop = fresh_postgres()
            usage: dict[str, float] = {}
            try:
                configure(url, tmp)
                conn = make_connection(base_url, f"bench-latency-{n_workers}", limit=SPEEDUP_LIMIT)
                calls_before, sandbox_cpu = sandbox.stats()["fhir_calls"], _cpu(sandbox_proc)
                machine = psutil.cpu_times()
                rows, _ = run_jobs_rows(conn, specs, workers=n_workers, usage=usage)
                busy_share = _busy_share(machine, psutil.cpu_times())
                calls = sandbox.stats()["fhir_calls"] - calls_before
                usage["cpu_s"] += _cpu(sandbox_proc) - sandbox_cpu
            finally:
                drop()
            count, seconds, busy = job_span(rows)
            rate = count / seconds
            base_rate = base_rate or rate
            per_job = calls / len(rows)
            jobs_per_cpu_s = len(rows) / usage["cpu_s"]
            emit(
                f"speedup_{n_workers}_workers",
                rate / base_rate,
                "x",
                count,
                baseline=round(base_rate, 1),
                rps=round(rate, 1),
                workers=n_workers,
                seconds=seconds,
                mean_job_s=busy / len(rows),
                concurrency=busy / seconds,
                latency_ms=LATENCY_MS,
                limit=SPEEDUP_LIMIT,
                patients=len(ids),
                database="postgresql",
                target=round(min(n_workers, SPEEDUP_LIMIT) * 0.8, 1),
                cpu_s=usage["cpu_s"],
                cpu_busy=usage["cpu_s"] / (seconds * cores),
                cores=cores,
                machine_busy=busy_share,
                fhir_calls_per_job=per_job,
                io_floor_s=per_job * LATENCY_MS / 1000,
                sandbox_vendor=SPEEDUP_VENDOR,
                fetch="search per resource type (no $everything)",
                cpu_per_job_s=usage["cpu_s"] / len(rows),
                cpu_ceiling=cores * jobs_per_cpu_s * (count / len(rows)) / base_rate,
            )
    finally:
        sandbox.clear_faults()


def _busy_share(before: Any, after: Any) -> float:
    """The machine's non-idle CPU share between two `psutil.cpu_times()` samples."""
    total = sum(after) - sum(before)
    idle = (after.idle + getattr(after, "iowait", 0.0)) - (
        before.idle + getattr(before, "iowait", 0.0)
    )
    return 1 - idle / total if total > 0 else 0.0


def _cpu(proc: Any) -> float:
    if proc is None:
        return 0.0
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def job_span(rows: list[Any]) -> tuple[int, float, float]:
    """(resources, seconds from first start to last end, summed job seconds)."""
    began = min(r.started_at for r in rows)
    ended = max(r.finished_at for r in rows)
    busy = sum((r.finished_at - r.started_at).total_seconds() for r in rows)
    return sum(r.fetched for r in rows), (ended - began).total_seconds(), busy


def httpx_ids(sandbox: Any, base_url: str) -> list[str]:
    import httpx

    token = sandbox.token()
    out, url = [], f"{base_url}/Patient?_count=1000&_elements=id"
    while url:
        bundle = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=60).json()
        out += [e["resource"]["id"] for e in bundle.get("entry", [])]
        url = next((lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"), None)
    return out


def main() -> None:
    from holovitals_sync.sandbox.config import SandboxConfig
    from holovitals_sync.sandbox.server import SandboxServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 patients, under a minute")
    parser.add_argument(
        "--large",
        action="store_true",
        help="only the memory check: worker RSS at 20k vs 200k resources",
    )
    parser.add_argument(
        "--million",
        action="store_true",
        help="the memory check at 20k vs ~1,000,000 resources (22,500 patients)",
    )
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="run only these parts (repeatable); default: all but large",
    )
    args = parser.parse_args()
    if args.large or args.million:
        large(MILLION_PATIENTS if args.million else LARGE_PATIENTS)
        return
    patients = 50 if args.quick else 500
    parts = args.only or DEFAULT_PARTS
    config = SandboxConfig(
        patients=patients,
        seed=42,
        export_polls_before_complete=0,
        export_retry_after=0.1,
        max_page_size=1000,
    )
    # The speed-up part brings its own sandbox (another vendor mode): this one is for inbound.
    served = SandboxServer(config, in_subprocess=True) if "inbound" in parts else nullcontext()
    with served as sandbox, tempfile.TemporaryDirectory() as tmp:
        private = start_redis(Path(tmp)) if not REDIS_URL else None
        try:
            run_all(sandbox, tmp, patients, args.quick, parts)
        finally:
            if private is not None:
                private.stop()


def start_redis(data_dir: Path) -> Any:
    """A redis-server child on a unix socket in the benchmark's scratch directory."""
    global REDIS_URL
    from holovitals_sync.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(data_dir=data_dir)
    REDIS_URL = server.start()
    return server


PARTS = ("inbound", "speedup", "split", "large")
DEFAULT_PARTS = ["inbound", "speedup", "split"]


def run_all(sandbox: Any, tmp: str, patients: int, quick: bool, parts: list[str]) -> None:
    """The measurements asked for, in the order of the module docstring."""
    if "inbound" in parts:
        base = sandbox.base_url
        sqlite_url = f"sqlite:///{tmp}/bench.db"
        rss = inbound(base, "sqlite", sqlite_url, tmp, 1000 if quick else 5000)
        pg_url, drop = fresh_postgres()
        try:
            rss = max(rss, inbound(base, "postgresql", pg_url, tmp, 1000 if quick else 5000))
        finally:
            drop()
        rss = max(rss, search(base, f"sqlite:///{tmp}/search.db", tmp))
        emit("worker_peak_rss_mb", rss / 2**20, "MB", patients)
    if "speedup" in parts:
        speedup(tmp, 20 if quick else 50)
    if "split" in parts:
        split_speedup(tmp, 500 if quick else 5000)
        split_speedup(tmp, 500 if quick else 5000, vendor="generic", costly=False)
    if "large" in parts:
        large()


# Offset paging on a real server: a fixed part per page, the rows skipped, the query's
# matches and the serialising of each entry (the sandbox waits this long before answering).
SPLIT_COST = {
    "per_page_ms": 20,
    "per_1000_offset_ms": 10,
    "per_1000_matches_ms": 2,
    "per_entry_ms": 0.05,
}
SPLIT_LIMIT = 16
# Real servers cut an export's output into files of so many resources (a type in several).
SPLIT_FILE_LINES = 10_000


def split_speedup(
    tmp: str,
    patients: int,
    counts: tuple[int, ...] = (1, 4),
    *,
    vendor: str = SPEEDUP_VENDOR,
    costly: bool = True,
) -> None:
    """One full sync by one worker, then the same by four sharing it as parts.

    vendor="generic", costly=False: the same through a Bulk Data export (parts are groups
    of its files), answered at once: what the split gives a CPU-bound sync.
    """
    from holovitals_sync.sandbox.config import SandboxConfig
    from holovitals_sync.sandbox.server import SandboxServer

    config = SandboxConfig(
        patients=patients,
        seed=42,
        vendor=vendor,
        max_page_size=1000,
        page_cost=SPLIT_COST if costly else {},
        export_polls_before_complete=0,
        export_retry_after=0.1,
        export_file_max_lines=SPLIT_FILE_LINES,
    )
    latency = LATENCY_MS if costly else 0
    with SandboxServer(config, in_subprocess=True) as sandbox:
        sandbox.set_faults(latency_ms=latency)
        base_rate = 0.0
        for n_workers in counts:
            url, drop = fresh_postgres()
            try:
                configure(url, tmp)
                conn = make_connection(
                    sandbox.base_url, f"bench-split-{n_workers}", limit=SPLIT_LIMIT
                )
                calls_before = sandbox.stats()["fhir_calls"]
                rows, peak = run_jobs_rows(conn, [{"job_type": "full"}], workers=n_workers)
                calls = sandbox.stats()["fhir_calls"] - calls_before
                parts = _count_parts(rows[0].id)
            finally:
                drop()
            count, seconds, _ = job_span(rows)
            rate = count / seconds
            base_rate = base_rate or rate
            emit(
                f"split_{n_workers}_workers",
                rate / base_rate,
                "x",
                count,
                baseline=round(base_rate, 1),
                rps=round(rate, 1),
                seconds=seconds,
                workers=n_workers,
                parts=parts,
                patients=patients,
                fhir_calls=calls,
                latency_ms=latency,
                limit=SPLIT_LIMIT,
                page_cost=SPLIT_COST if costly else None,
                peak_rss_mb=round(peak / 2**20, 1),
                sandbox_vendor=vendor,
                database="postgresql",
                status=rows[0].status.value,
            )


def _count_parts(parent_id: int) -> int:
    from sqlmodel import func, select

    from holovitals_sync.db import session_scope
    from holovitals_sync.models import SyncJob

    with session_scope() as session:
        return int(
            session.exec(
                select(func.count()).select_from(SyncJob).where(SyncJob.parent_id == parent_id)
            ).one()
        )


def large_run(patients: int, tmp: str) -> tuple[int, float, int]:
    """One full sync of a fresh sandbox of `patients` into a fresh PostgreSQL database."""
    from holovitals_sync.sandbox.config import SandboxConfig
    from holovitals_sync.sandbox.server import SandboxServer

    config = SandboxConfig(
        patients=patients,
        seed=42,
        export_polls_before_complete=0,
        export_retry_after=0.1,
        max_page_size=1000,
    )
    with SandboxServer(config, in_subprocess=True) as sandbox:
        url, drop = fresh_postgres()
        try:
            configure(url, tmp)
            conn = make_connection(sandbox.base_url, f"bench-large-{patients}")
            return run_jobs(conn, [{"job_type": "full"}], workers=1)
        finally:
            drop()


# ~45 resources per sandbox patient: 500 -> ~22k, 5,000 -> ~223k, 22,500 -> ~1,000,000.
LARGE_PATIENTS = (500, 5000)
MILLION_PATIENTS = (500, 22_500)


def large(sizes: tuple[int, int] = LARGE_PATIENTS) -> None:
    """Peak worker RSS of one full sync (bulk NDJSON, PostgreSQL) at ~20k and ~200k
    (`--million`: ~1,000,000).

    Each size gets its own sandbox and database; "flat" means the 200k run's peak is
    within a few percent of the 20k run's (the loop streams batches and keeps none).
    """
    peaks: list[tuple[int, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        private = start_redis(Path(tmp)) if not REDIS_URL else None
        try:
            for patients in sizes:
                count, seconds, rss = large_run(patients, tmp)
                peaks.append((count, rss))
                emit(
                    "worker_peak_rss_large_mb",
                    rss / 2**20,
                    "MB",
                    count,
                    seconds=seconds,
                    rps=count / seconds,
                    database="postgresql",
                )
        finally:
            if private is not None:
                private.stop()
    (small_n, small), (big_n, big) = peaks
    emit(
        "rss_growth_large",
        100 * (big - small) / small,
        "%",
        big_n,
        baseline=round(small / 2**20, 1),
        baseline_n=small_n,
        peak_mb=round(big / 2**20, 1),
    )


if __name__ == "__main__":
    main()
