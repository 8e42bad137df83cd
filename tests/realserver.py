"""A real FHIR R4 server none of us wrote, on loopback: SEKMET, from PyPI.

`scripts/setup.sh --test` installs it into `.tools/fhir-server` (its own virtualenv). Each
test module gets a fresh server process with its own SQLite store, loaded with the sandbox's
synthetic patients through the server's own transaction endpoint, so what our adapter reads
is what SEKMET made of them: its versions, its lastUpdated, its paging, its history.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from holovitals_sync.adapters import content_hash
from holovitals_sync.sandbox import data

ROOT = Path(__file__).parents[1]
SEKMET = ROOT / ".tools" / "fhir-server" / "bin" / "sekmet"
CONFIG = ROOT / "tests" / "fhir_server" / "sekmet.yaml"
PATIENTS, SEED = 12, 5
# What the generic adapter syncs from it (its CapabilityStatement lists many more types).
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RealServer:
    base_url: str
    process: subprocess.Popen
    client: httpx.Client

    def everything(self) -> dict[tuple[str, str], str]:
        """(type, id) -> content hash of every live resource of the synced types, read
        by plain paging (the server's truth, without our adapter)."""
        out: dict[tuple[str, str], str] = {}
        for rtype in TYPES:
            url: str | None = f"{self.base_url}/{rtype}?_count=1000"
            while url:
                page = self.client.get(url).raise_for_status().json()
                for entry in page.get("entry") or []:
                    res = entry["resource"]
                    out[(res["resourceType"], res["id"])] = content_hash(res)
                url = next(
                    (lk["url"] for lk in page.get("link") or [] if lk.get("relation") == "next"),
                    None,
                )
        return out

    def read(self, rtype: str, rid: str) -> dict[str, Any]:
        return self.client.get(f"{self.base_url}/{rtype}/{rid}").raise_for_status().json()

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{resource['resourceType']}/{resource['id']}"
        return self.client.put(url, json=resource).raise_for_status().json()

    def post(self, resource: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{resource['resourceType']}"
        return self.client.post(url, json=resource).raise_for_status().json()

    def delete(self, rtype: str, rid: str) -> None:
        self.client.delete(f"{self.base_url}/{rtype}/{rid}").raise_for_status()


def _transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    entries = []
    for res in resources:
        body = {k: v for k, v in res.items() if k != "meta"}  # the server keeps its own
        entries.append(
            {
                "resource": body,
                "request": {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _load(client: httpx.Client, base_url: str) -> int:
    resources = [r for r in data.generate(SEED, PATIENTS) if r["resourceType"] in TYPES]
    for start in range(0, len(resources), 500):
        bundle = _transaction(resources[start : start + 500])
        client.post(base_url, json=bundle, timeout=120).raise_for_status()
    return len(resources)


def _wait_ready(base_url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"SEKMET exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/metadata", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"SEKMET never answered: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def real_server(tmp_path_factory) -> Iterator[RealServer]:
    if not SEKMET.exists():
        pytest.fail(
            f"the real FHIR server is not installed at {SEKMET} "
            "(scripts/setup.sh --test installs it)"
        )
    home = tmp_path_factory.mktemp("sekmet")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/fhir"
    env = {
        **os.environ,
        "SEKMET_PORT": str(port),
        "SEKMET_BASE_URL": base_url,
        "SEKMET_DB": str(home / "fhir.db"),
    }
    log = home / "sekmet.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(SEKMET), "serve", "-c", str(CONFIG)],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(base_url, process, log)
        with httpx.Client(timeout=60, headers={"Accept": "application/fhir+json"}) as client:
            _load(client, base_url)
            yield RealServer(base_url, process, client)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
