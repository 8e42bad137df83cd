"""A worker's warm-up leaves nothing for a job's first FHIR request to import.

RQ forks a work horse per job and whatever a horse imports dies with it: a module first
imported during a request is imported again in every job (httpx's engine was ~30 ms of
CPU per job). Checked in a fresh interpreter, as a worker starts, against a server on
loopback in the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.loopback import serve

ROOT = Path(__file__).resolve().parents[3]

_CHILD = textwrap.dedent("""
    import json, sys

    from holovitals_sync.fhir.config import ClientConfig
    from holovitals_sync.fhir.transport import HttpCore
    from holovitals_sync.services.orchestration.runner import warm_up

    mode, base = sys.argv[1:3]
    if mode == "warm":
        warm_up()
    before = set(sys.modules)
    core = HttpCore(ClientConfig(base_url=base))
    response = core.send(core.build("GET", base + "/metadata"), authenticated=False)
    core.close()
    print(json.dumps({"status": response.status_code,
                      "new": sorted(set(sys.modules) - before)}))
""")


class _Metadata(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        body = b'{"resourceType": "CapabilityStatement"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _first_request_imports(mode: str) -> tuple[int, list[str]]:
    with serve(_Metadata, "/fhir") as url:
        # By host name, as a connection's base URL is: resolving it loads the IDNA codec.
        base = url.replace("127.0.0.1", "localhost")
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, mode, base],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["status"], result["new"]


def test_a_warmed_worker_imports_nothing_on_its_first_request():
    status, new = _first_request_imports("warm")
    assert status == 200
    assert new == []


def test_without_the_warm_up_the_first_request_imports_the_http_engine():
    # The other side of the test above, which would pass vacuously if a request imported
    # nothing anyway.
    status, new = _first_request_imports("cold")
    assert status == 200
    assert {"httpcore", "h11", "encodings.idna"} <= set(new)
