"""Full sync against a real FHIR server none of us wrote, beside what else one could run.

    python benchmarks/real_server.py [--patients 500] [--workers 1 4] [--postgres]

Starts SEKMET (the open-source FHIR R4 server `scripts/setup.sh --test` installs into
`.tools/fhir-server`) on loopback with its own SQLite store, loads the sandbox's synthetic
patients through its transaction endpoint, then measures in the same run, one after the
other on the same server and data:

- `fhirpy_script_rps`: what a hospital engineer writes instead: a short fhirpy script that
  pages each type 500 at a time into a SQLite table (`benchmarks/baselines/fhirpy_dump.py`,
  run with its own virtualenv `.tools/bench-baselines`, made on first use from PyPI).
- `paging_ceiling_rps`: the server's own paging ceiling for our plan: a raw loop that pages
  every type at our page size with our number of parallel streams and keeps nothing.
- `export_ceiling_rps`: the same for a Bulk Data `$export` (kick-off, wait, download).
  Both page (or export) the eight types the data is in.
- `paging_ceiling_all_types_rps`, `export_ceiling_all_types_rps`: the same two over every
  type our sync reads: a generic server's types are those its CapabilityStatement declares
  searchable (SEKMET: 52, 44 of them empty here), each a first page or an `_type` entry.
  These are the ceilings of our sync's own plan.
- `full_sync_rps_<n>w`: our full sync (`holovitals-sync`'s engine, real `rq worker`
  processes, SQLite; with `--postgres` a scratch PostgreSQL database on this machine's
  server, and `_postgres` at the end of the metric) with n workers, from the job's start
  to its end; each line gives its ratio to the fhirpy script and to the ceilings of the
  plan it used (export where the server offers it, else paging): `vs_ceiling` over the
  eight types, `vs_ceiling_all_types` over every type it reads.
  `full_sync_rps_<n>w_search`: the same with the connection's `full_sync_via` set to
  "search" (paged, never `$export`).
- `..._chosen_types`: the same two syncs with the connection told to sync the eight types
  the data is in (`resource_types`), against `paging_ceiling_chosen_types_rps` (those
  eight paged in our streams' order) or the eight-type export ceiling
  (`vs_ceiling_chosen_types`): the plan a hospital engineer's script has.

Each line also says how many cores the server kept busy (`server_cores`) and the whole
machine (`machine_cores_busy` of `cores`) over that measurement: the server and our sync
share this machine's cores, so a ceiling the server reaches with the machine to itself is
not one a sync that also parses and stores can reach beside it.

Prints JSON lines; figures go into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import sync as bench  # noqa: E402 (benchmarks run as scripts)
from _common import commit_sha, free_port, fresh_postgres  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SEKMET = ROOT / ".tools" / "fhir-server" / "bin" / "sekmet"
CONFIG = ROOT / "tests" / "fhir_server" / "sekmet.yaml"
BASELINES = ROOT / ".tools" / "bench-baselines"
REQUIREMENTS = Path(__file__).parent / "baselines" / "requirements.txt"
SCRIPT = Path(__file__).parent / "baselines" / "fhirpy_dump.py"
TYPES = (
    "AllergyIntolerance",
    "Condition",
    "DiagnosticReport",
    "Encounter",
    "Immunization",
    "MedicationRequest",
    "Observation",
    "Patient",
)
SHA = commit_sha()
STREAMS = 4  # our default stream_limit; the connection's concurrency_limit is set to match
POSTGRES = False  # `--postgres`: our syncs store into PostgreSQL, not SQLite


def emit(metric: str, value: float, unit: str, n: int, **extra: Any) -> None:
    line = {
        "bench": "real_server",
        "metric": metric,
        "value": round(value, 1),
        "unit": unit,
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in extra.items()},
        "n": n,
        "commit": SHA,
    }
    print(orjson.dumps(line).decode(), flush=True)


class Sekmet:
    """SEKMET in a scratch directory, loaded with the sandbox's synthetic patients."""

    def __init__(self, home: Path, patients: int) -> None:
        if not SEKMET.exists():
            raise SystemExit(f"{SEKMET} missing: run scripts/setup.sh --test")
        port = free_port()
        self.base = f"http://127.0.0.1:{port}/fhir"
        env = {
            **os.environ,
            "SEKMET_PORT": str(port),
            "SEKMET_BASE_URL": self.base,
            "SEKMET_DB": str(home / "fhir.db"),
        }
        self.home = home
        self.log = (home / "sekmet.log").open("wb")
        self.proc = subprocess.Popen(
            [str(SEKMET), "serve", "-c", str(CONFIG)],
            cwd=home,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait()
        self.count = self._load(patients)

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/metadata", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise SystemExit("SEKMET did not start")

    def _load(self, patients: int) -> int:
        from holovitals_sync.sandbox import data

        resources = [r for r in data.generate(42, patients) if r["resourceType"] in TYPES]
        began = time.perf_counter()
        with httpx.Client(timeout=600) as client:
            for start in range(0, len(resources), 500):
                entries = [
                    {
                        "resource": {k: v for k, v in r.items() if k != "meta"},
                        "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                    }
                    for r in resources[start : start + 500]
                ]
                client.post(
                    self.base,
                    json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                ).raise_for_status()
        print(
            f"loaded {len(resources)} resources in {time.perf_counter() - began:.0f} s",
            file=sys.stderr,
        )
        return len(resources)

    def log_size(self) -> int:
        self.log.flush()
        return (self.home / "sekmet.log").stat().st_size

    def exported_since(self, offset: int) -> bool:
        """Whether the server was asked for a `$export` since `offset` in its access log
        (a finished job's checkpoint no longer says which plan it ran)."""
        with (self.home / "sekmet.log").open("rb") as log:
            log.seek(offset)
            return b"/$export" in log.read()

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)
        self.log.close()


def baseline_python() -> Path:
    """The baselines' own interpreter (fhirpy and its dependencies stay out of ours)."""
    python = BASELINES / "bin" / "python"
    if not python.exists():
        venv.create(BASELINES, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True
        )
    return python


def fhirpy_script(base: str, tmp: str) -> tuple[int, float]:
    out = subprocess.run(
        [str(baseline_python()), str(SCRIPT), base, f"{tmp}/fhirpy.db", *TYPES],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    count, seconds = out.split()
    return int(count), float(seconds)


def our_types(base: str) -> tuple[str, ...]:
    """The types our generic adapter reads from this server (its CapabilityStatement), in
    the order its streams start them (largest first, `adapters/volume.py`): with 52 types
    and four streams, the order decides when the largest one starts, so a ceiling paged
    alphabetically would not be the ceiling of our plan."""
    from holovitals_sync.adapters.generic import profile_from_server

    with httpx.Client(timeout=60, headers={"Accept": "application/fhir+json"}) as client:
        capabilities = client.get(f"{base}/metadata").raise_for_status().json()
    return in_our_order(profile_from_server(capabilities, None).resource_types)


def in_our_order(types: tuple[str, ...]) -> tuple[str, ...]:
    """`types` in the order our streams start them (see `our_types`)."""
    from holovitals_sync.adapters.volume import LARGEST_FIRST

    ranked = {rtype: rank for rank, rtype in enumerate(LARGEST_FIRST)}
    plan = sorted(types, key=lambda t: t != "Patient")  # the plan's order (adapters/base.py)
    return tuple(sorted(plan, key=lambda t: ranked.get(t, len(ranked))))  # ties keep it


def paging_ceiling(
    base: str, page_size: int, streams: int, types: tuple[str, ...] = TYPES
) -> tuple[int, float]:
    """Every type paged at `page_size`, `streams` types at once, nothing kept.

    One kept-alive client per stream and orjson, as our sync has. The loop of earlier
    sessions opened a connection per type and parsed with the standard library: over 52
    types it measured its own overhead, and our sync came out faster than that "ceiling".
    """
    local = threading.local()
    clients: list[httpx.Client] = []

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=300, headers={"Accept": "application/fhir+json"})
            clients.append(local.client)
        return local.client

    def one(rtype: str) -> int:
        count = 0
        url: str | None = f"{base}/{rtype}?_count={page_size}"
        while url:
            page = orjson.loads(client().get(url).raise_for_status().content)
            count += sum(1 for e in page.get("entry") or [] if "resource" in e)
            url = next(
                (link["url"] for link in page.get("link") or [] if link.get("relation") == "next"),
                None,
            )
        return count

    began = time.perf_counter()
    try:
        with ThreadPoolExecutor(streams) as pool:
            count = sum(pool.map(one, types))
        return count, time.perf_counter() - began
    finally:
        for each in clients:
            each.close()


def export_ceiling(base: str, types: tuple[str, ...] = TYPES) -> tuple[int, float] | None:
    """Kick off `$export`, wait for it, download every file; None when not offered."""
    began = time.perf_counter()
    with httpx.Client(timeout=600, headers={"Accept": "application/fhir+json"}) as client:
        kick = client.get(
            f"{base}/$export",
            params={"_type": ",".join(types)},
            headers={"Prefer": "respond-async"},
        )
        if kick.status_code != 202:
            return None
        status = kick.headers["content-location"]
        while (answer := client.get(status)).status_code == 202:
            time.sleep(float(answer.headers.get("retry-after", "0.2") or 0.2))
        manifest = answer.raise_for_status().json()
        count = 0
        for item in manifest.get("output") or []:
            body = client.get(item["url"], headers={"Accept": "application/fhir+ndjson"})
            count += sum(1 for line in body.raise_for_status().text.splitlines() if line)
    return count, time.perf_counter() - began


def sekmet_connection(server: Sekmet, name: str, via: str, types: tuple[str, ...] = ()) -> int:
    """A generic connection to SEKMET in the configured database, as an administrator makes
    it: no auth, our default streams (the concurrency limit set to match), `via` as its
    `full_sync_via`, `types` as its resource types to sync (empty: all). Returns its id."""
    from holovitals_sync.db import session_scope
    from holovitals_sync.models import AuthMethod
    from holovitals_sync.services import audit
    from holovitals_sync.services.connections import ConnectionIn, create_connection

    data = ConnectionIn(
        name=name,
        vendor="generic",
        base_url=server.base,
        auth_method=AuthMethod.NONE,
        scopes="system/*.read",
        concurrency_limit=STREAMS,
        stream_limit=STREAMS,
        full_sync_via=via,
        resource_types=list(types),
    )
    with session_scope() as session:
        return int(create_connection(session, data=data, actor=audit.Actor.system("bench")).id)


def our_sync(
    server: Sekmet, tmp: str, workers: int, via: str, types: tuple[str, ...] = ()
) -> tuple[int, float, str]:
    """One full sync by `workers` workers into a fresh database, SQLite or (`--postgres`) a
    scratch PostgreSQL one (`via`: the connection's `full_sync_via`; `types`: its resource
    types, empty for all)."""
    name = f"{workers}w-{via}" + ("-chosen" if types else "")
    url, drop = (
        fresh_postgres("hv_real") if POSTGRES else (f"sqlite:///{Path(tmp) / f'{name}.db'}", None)
    )
    try:
        bench.configure(url, tmp)
        cid = sekmet_connection(server, f"real-{name}", via, types)
        offset = server.log_size()
        count, seconds, _ = bench.run_jobs(cid, [{"job_type": "full"}], workers=workers)
        plan, parts = _plan_of(server, offset)
    finally:
        if drop is not None:
            from holovitals_sync.db import get_engine

            get_engine().dispose()
            drop()
    return count, seconds, f"{plan}, {parts} parts" if parts else plan


def _plan_of(server: Sekmet, offset: int) -> tuple[str, int]:
    """How the finished full sync read the server, and into how many parts it was split."""
    from sqlmodel import select

    from holovitals_sync.db import session_scope
    from holovitals_sync.models import SyncJob

    plan = "export" if server.exported_since(offset) else "paging"
    with session_scope() as session:
        parent = session.exec(select(SyncJob).where(SyncJob.parent_id.is_(None))).one()
        return plan, len(parent.checkpoint.get("children") or [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="our syncs store into scratch PostgreSQL databases (production's store)",
    )
    args = parser.parse_args()
    global POSTGRES
    POSTGRES = args.postgres
    with tempfile.TemporaryDirectory(prefix="hv-real-") as tmp:
        server = Sekmet(Path(tmp), args.patients)
        private = bench.start_redis(Path(tmp))
        try:
            run(server, tmp, args.workers)
        finally:
            private.stop()
            server.stop()


class CpuMeter:
    """Cores the server and the whole machine kept busy over one measurement: on a small
    machine the server and our sync share the same cores, which decides the ratios."""

    def __init__(self, server: Sekmet) -> None:
        self.server = psutil.Process(server.proc.pid)

    def _server_seconds(self) -> float:
        procs = [self.server, *self.server.children(recursive=True)]
        return sum(sum(p.cpu_times()[:2]) for p in procs if p.is_running())

    def __enter__(self) -> CpuMeter:
        self._t, self._s, self._m = time.perf_counter(), self._server_seconds(), psutil.cpu_times()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._t
        after = psutil.cpu_times()
        busy = sum(after) - sum(self._m) - (after.idle - self._m.idle)
        self.figures = {
            "server_cores": round((self._server_seconds() - self._s) / wall, 2),
            "machine_cores_busy": round(busy / wall, 2),
            "cores": psutil.cpu_count(),
        }


def run(server: Sekmet, tmp: str, worker_counts: list[int]) -> None:
    with CpuMeter(server) as cpu:
        n, s = fhirpy_script(server.base, tmp)
    script = n / s
    emit("fhirpy_script_rps", script, "resources/s", n, seconds=s, page_size=500, **cpu.figures)
    with CpuMeter(server) as cpu:
        n, s = paging_ceiling(server.base, 1000, STREAMS)
    paging = n / s
    emit(
        "paging_ceiling_rps",
        paging,
        "resources/s",
        n,
        seconds=s,
        page_size=1000,
        streams=STREAMS,
        **cpu.figures,
    )
    exported = export_ceiling(server.base)
    export = exported[0] / exported[1] if exported else None
    if exported:
        emit("export_ceiling_rps", export or 0.0, "resources/s", exported[0], seconds=exported[1])
    everything = _all_types_ceilings(server)
    chosen = _chosen_types_ceilings(server, export)
    ceilings = {"export": export, "paging": paging}
    for workers in worker_counts:
        for via in ("export", "search"):
            _our_line(server, tmp, workers, via, script, ceilings, everything)
            _our_line(server, tmp, workers, via, script, ceilings, chosen, TYPES)


def _chosen_types_ceilings(server: Sekmet, export: float | None) -> dict[str, float | None]:
    """The ceilings of the plan of a connection told to sync the eight types the data is in
    (`resource_types`): paged in our streams' order; the export is the eight-type one."""
    types = in_our_order(TYPES)
    with CpuMeter(server) as cpu:
        n, s = paging_ceiling(server.base, 1000, STREAMS, types)
    emit("paging_ceiling_chosen_types_rps", n / s, "resources/s", n, seconds=s, page_size=1000,
         streams=STREAMS, types=len(types), **cpu.figures)  # fmt: skip
    return {"paging": n / s, "export": export}


def _all_types_ceilings(server: Sekmet) -> dict[str, float | None]:
    """Both ceilings over every type our sync reads (its plan), not only the eight."""
    types = our_types(server.base)
    with CpuMeter(server) as cpu:
        n, s = paging_ceiling(server.base, 1000, STREAMS, types)
    emit("paging_ceiling_all_types_rps", n / s, "resources/s", n, seconds=s, page_size=1000,
         streams=STREAMS, types=len(types), **cpu.figures)  # fmt: skip
    exported = export_ceiling(server.base, types)
    if exported:
        emit("export_ceiling_all_types_rps", exported[0] / exported[1], "resources/s",
             exported[0], seconds=exported[1], types=len(types))  # fmt: skip
    return {"paging": n / s, "export": exported[0] / exported[1] if exported else None}


def _our_line(
    server: Sekmet,
    tmp: str,
    workers: int,
    via: str,
    script: float,
    ceilings: dict[str, float | None],
    everything: dict[str, float | None],
    types: tuple[str, ...] = (),
) -> None:
    """One sync's line; `everything` holds the ceilings of its own plan (every type it
    reads: all the server declares, or `types` when the connection is told to sync those)."""
    if workers > 1:  # a full sync this size is shared by the workers (child jobs)
        os.environ["HOLOVITALS_SYNC_SPLIT_ABOVE"] = "1"
    with CpuMeter(server) as cpu:
        count, seconds, plan = our_sync(server, tmp, workers, via, types)
    os.environ.pop("HOLOVITALS_SYNC_SPLIT_ABOVE", None)
    rate = count / seconds
    kind = "export" if plan.startswith("export") else "paging"
    ceiling = ceilings[kind] or ceilings["paging"] or rate
    same_plan = everything[kind] or everything["paging"] or rate
    emit(
        f"full_sync_rps_{workers}w"
        + ("" if via == "export" else "_search")
        + ("_chosen_types" if types else "")
        + ("_postgres" if POSTGRES else ""),
        rate,
        "resources/s",
        count,
        seconds=seconds,
        full_sync_via=via,
        plan=plan,
        vs_fhirpy_script=rate / script,
        vs_ceiling=rate / ceiling,
        **{"vs_ceiling_chosen_types" if types else "vs_ceiling_all_types": rate / same_plan},
        target_vs_fhirpy=2.0,
        target_vs_ceiling=0.8,
        **cpu.figures,
    )


if __name__ == "__main__":
    main()
