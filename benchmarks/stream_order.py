"""Parallel streams started largest type first, or in the plan's order, on a real server.

    python benchmarks/stream_order.py [--runs 8] [--latency-ms 0 100] [--patients 500]

Starts SEKMET as `real_server.py` does (its capability statement lists 52 types in
alphabetical order, so Observation, most of the data, comes 39th) and runs paged full syncs
(`full_sync_via: search`, four streams, SQLite) in this process, one after the other and
interleaved: even runs start streams in `adapters.volume`'s order (largest first, the
product's), odd runs in the plan's order (the baseline, as before `2348262`). The engine is
the worker's own (`runner.run_job`), without RQ around it. `--latency-ms` adds that wait
before each of our requests, as a hospital's network does; SEKMET on loopback answers in
milliseconds, where the run is bound by CPU rather than by the largest type's pages.

Prints one JSON line per latency and order: the runs' seconds, their median, and the
baseline's median over the product's (`speedup`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import real_server as rs  # noqa: E402 (benchmarks run as scripts)
import sync as bench  # noqa: E402
from _common import commit_sha  # noqa: E402

SHA = commit_sha()
_SEND = httpx.Client.send


def _delay_requests(seconds: float) -> None:
    """Wait `seconds` before each request of this process's httpx clients."""
    send = _SEND

    def delayed(self: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
        if seconds:
            time.sleep(seconds)
        return send(self, request, **kw)

    httpx.Client.send = delayed  # type: ignore[method-assign]


def _one_sync(server: rs.Sekmet, tmp: str, run: str) -> float:
    from holovitals_sync.db import session_scope
    from holovitals_sync.models import JobStatus, RequesterKind, SyncJob
    from holovitals_sync.services import audit
    from holovitals_sync.services.orchestration import JobRequest, runner, start_job

    bench.configure(f"sqlite:///{Path(tmp) / f'order-{run}.db'}", tmp)
    cid = rs.sekmet_connection(server, f"order-{run}", "search")
    with session_scope() as session:
        job_id = start_job(
            session,
            request=JobRequest(connection_id=cid, job_type="full"),
            requested_by_kind=RequesterKind.SYSTEM,
            requested_by="bench",
            actor=audit.Actor.system("bench"),
        ).id
    began = time.perf_counter()
    runner.run_job(job_id)
    seconds = time.perf_counter() - began
    with session_scope() as session:
        job = session.get(SyncJob, job_id)
        if job is None or job.status is not JobStatus.COMPLETED:
            raise SystemExit(f"run {run} did not complete")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="per order and latency")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 100.0])
    parser.add_argument("--patients", type=int, default=500)
    args = parser.parse_args()
    from holovitals_sync.adapters import volume

    largest_first = volume.start_order

    def plan_order(tasks: list[Any], indices: list[int]) -> list[int]:
        return list(indices)

    with tempfile.TemporaryDirectory(prefix="hv-order-") as tmp:
        server = rs.Sekmet(Path(tmp), args.patients)
        private = bench.start_redis(Path(tmp))
        try:
            _one_sync(server, tmp, "warm-up")  # warm-up: imports, the server's caches
            for latency in args.latency_ms:
                _delay_requests(latency / 1000)
                times: dict[str, list[float]] = {"largest_first": [], "plan_order": []}
                for run in range(2 * args.runs):
                    name = "largest_first" if run % 2 == 0 else "plan_order"
                    volume.start_order = largest_first if name == "largest_first" else plan_order
                    # A database of its own per run (named by latency and run).
                    times[name].append(_one_sync(server, tmp, f"{latency:g}ms-{run}"))
                _emit(latency, times)
        finally:
            volume.start_order = largest_first
            private.stop()
            server.stop()


def _emit(latency: float, times: dict[str, list[float]]) -> None:
    medians = {name: statistics.median(runs) for name, runs in times.items()}
    for name, runs in times.items():
        line = {
            "bench": "stream_order",
            "metric": f"full_sync_seconds_{name}",
            "value": round(medians[name], 3),
            "unit": "s (median)",
            "latency_ms": latency,
            "runs": [round(r, 3) for r in runs],
            **(
                {"speedup": round(medians["plan_order"] / medians[name], 2)}
                if name == "largest_first"
                else {}
            ),
            "n": len(runs),
            "commit": SHA,
        }
        print(orjson.dumps(line).decode(), flush=True)


if __name__ == "__main__":
    main()
