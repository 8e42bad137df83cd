"""Benchmark of the FHIR client against the sandbox EHR on loopback.

    python benchmarks/fhir_client.py [--quick]

Starts a SandboxServer (500 patients; --quick: 100) in this process, authenticates with the
demo client (client_secret_basic), then times:

- paged_search_rps: a paged search of every Observation, 500 per page;
- bulk_export_rps: the download of a system-level `$export` of every resource (kick-off and
  polling are excluded: they measure the server's Retry-After, not the client).

Prints one JSON line per metric. The sandbox shares this process (and its GIL) with the
client, so the figures are a floor for the client alone.
"""

from __future__ import annotations

import argparse
import time

import orjson
from _common import commit_sha  # noqa: E402 (benchmarks run as scripts)

from holovitals_sync.fhir import BulkExporter, ClientConfig, ClientSecret, FhirClient
from holovitals_sync.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SandboxConfig
from holovitals_sync.sandbox.server import SandboxServer

PAGE_SIZE = 500


def emit(metric: str, count: int, seconds: float, sha: str) -> None:
    """Print one metric line."""
    line = {
        "bench": "fhir_client",
        "metric": metric,
        "value": round(count / seconds, 1),
        "unit": "resources/s",
        "n": count,
        "commit": sha,
    }
    print(orjson.dumps(line).decode(), flush=True)


def paged_search(client: FhirClient) -> tuple[int, float]:
    """Time a paged search of all Observations."""
    started = time.perf_counter()
    count = sum(1 for _ in client.search("Observation", page_size=PAGE_SIZE))
    return count, time.perf_counter() - started


def bulk_download(client: FhirClient) -> tuple[int, float]:
    """Run a system export, then time streaming every output file."""
    bulk = BulkExporter(client, poll_interval=0.05, max_poll_interval=1.0)
    manifest = bulk.wait(bulk.kick_off())
    started = time.perf_counter()
    count = sum(1 for _ in bulk.iter_resources(manifest))
    elapsed = time.perf_counter() - started
    if manifest.total_count is not None and count != manifest.total_count:
        raise SystemExit(f"bulk export streamed {count} of {manifest.total_count} resources")
    return count, elapsed


def main() -> None:
    """Run the benchmark and print its JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 patients instead of 500")
    args = parser.parse_args()
    patients = 100 if args.quick else 500
    sha = commit_sha()
    config = SandboxConfig(
        patients=patients, seed=2026, export_polls_before_complete=1, export_retry_after=0.05
    )
    with SandboxServer(config) as server:
        credentials = ClientSecret(
            client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, scope="system/*.read"
        )
        with FhirClient(ClientConfig(base_url=server.base_url), credentials) as client:
            client.capabilities()
            next(client.search("Patient"))  # authenticate and warm the pool
            emit("paged_search_rps", *paged_search(client), sha)
            emit("bulk_export_rps", *bulk_download(client), sha)


if __name__ == "__main__":
    main()
