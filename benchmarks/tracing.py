"""What tracing costs a sync: the same full sync with OpenTelemetry off and on, same run.

    python -u benchmarks/tracing.py [--quick] [--rounds N]

Starts the sandbox EHR in its own process (500 patients, ~20,000 resources; --quick: 50),
a private redis-server and, for the traced runs, an OTLP/HTTP collector on loopback that
takes every export (it counts spans' bytes and discards them, as a fast collector would).
Each round runs, on a fresh SQLite database, one full sync by one `rq worker` with tracing
off and then on (OTEL_EXPORTER_OTLP_ENDPOINT set for the worker), interleaved so both see
the same machine. Two kinds of full sync:

- bulk: a full sync, by Bulk Data export (NDJSON files, batches of 1,000): the issue's
  figure.
- search: one resource-type job per type, paged search (pages of 1,000; a span per EHR
  request and per job).

Prints one JSON line per kind: `traced_<kind>_rps_sqlite`, the median rate with tracing
on; baseline = the median rate with it off; ratio = on / off (the target: >= 0.9). The
line also gives the bytes the workers exported per 1,000 resources.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sync  # noqa: E402 (benchmarks run as scripts)
from sync import configure, emit, make_connection, run_jobs, start_redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _Sink(BaseHTTPRequestHandler):
    received = 0  # bytes of every export, all paths

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received += len(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def collector() -> Iterator[type[_Sink]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["OTEL_BENCH_ENDPOINT"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield _Sink
    finally:
        server.shutdown()
        server.server_close()


def one_run(base_url: str, tmp: str, n: int, kind: str, traced: bool) -> tuple[float, int]:
    """(resources/s, resources) of one full sync into a fresh database."""
    os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    if traced:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = os.environ["OTEL_BENCH_ENDPOINT"]
    try:
        configure(f"sqlite:///{tmp}/tracing-{kind}-{n}-{int(traced)}.db", tmp)
        count, seconds, _ = run_jobs(*_jobs(base_url, kind, n), workers=1)
    finally:
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return count / seconds, count


def _jobs(base_url: str, kind: str, n: int) -> tuple[int, list[dict[str, Any]]]:
    """A connection and the jobs of one run: a full sync (the generic sandbox answers it by
    Bulk Data export), or one search job per resource type, one at a time (as sync.py's
    inbound_search_rps_sqlite)."""
    from holovitals_sync.adapters.generic import PROFILE

    if kind == "bulk":
        return make_connection(base_url, f"bench-bulk-{n}"), [{"job_type": "full"}]
    types = PROFILE.resource_types
    specs = [{"job_type": "resource", "resource_type": t} for t in types]
    return make_connection(base_url, f"bench-search-{n}", limit=1), specs


def measure(base_url: str, tmp: str, kind: str, rounds: int, sink: type[_Sink]) -> None:
    off: list[float] = []
    on: list[float] = []
    exported, traced_resources = 0, 0
    for n in range(rounds):
        rate, _ = one_run(base_url, tmp, n, kind, traced=False)
        off.append(rate)
        before = sink.received
        rate, count = one_run(base_url, tmp, n, kind, traced=True)
        on.append(rate)
        exported, traced_resources = exported + sink.received - before, traced_resources + count
    value, baseline = statistics.median(on), statistics.median(off)
    emit(
        f"traced_{kind}_rps_sqlite",
        value,
        "resources/s",
        count,
        baseline=round(baseline, 1),
        ratio=value / baseline,
        rounds=rounds,
        on=[round(r) for r in on],
        off=[round(r) for r in off],
        exported_kb_per_1000=round(exported / 1024 / max(traced_resources, 1) * 1000, 1),
    )


def main() -> None:
    from holovitals_sync.sandbox.config import SandboxConfig
    from holovitals_sync.sandbox.server import SandboxServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 patients")
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs per kind")
    args = parser.parse_args()
    config = SandboxConfig(
        patients=50 if args.quick else 500,
        seed=42,
        export_polls_before_complete=0,
        export_retry_after=0.1,
        max_page_size=1000,
    )
    sync.SHA = sync.commit_sha()
    with (
        SandboxServer(config, in_subprocess=True) as sandbox,
        tempfile.TemporaryDirectory() as tmp,
        collector() as sink,
    ):
        private = start_redis(Path(tmp)) if not sync.REDIS_URL else None
        try:
            for kind in ("bulk", "search"):
                measure(sandbox.base_url, tmp, kind, args.rounds, sink)
        finally:
            if private is not None:
                private.stop()


if __name__ == "__main__":
    main()
