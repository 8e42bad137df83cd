"""EHR request latency and errors by vendor in `/api/metrics`, counted across processes
through Redis: real FHIR requests to the sandbox (with injected faults) and a worker process."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from holovitals_sync.config import get_settings
from holovitals_sync.fhir import ClientConfig, ClientSecret, FhirClient, RetryPolicy, Timeouts
from holovitals_sync.fhir.client import set_request_observer
from holovitals_sync.fhir.errors import FhirError
from holovitals_sync.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from holovitals_sync.services.metrics import record_fhir_requests

RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=1)


@pytest.fixture
def recording(world) -> Iterator[None]:
    record_fhir_requests(get_settings())
    yield
    set_request_observer(None)


def _client(base_url: str, vendor: str) -> FhirClient:
    creds = ClientSecret(
        client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, scope="system/*.read"
    )
    config = ClientConfig(
        base_url=base_url, retry=RETRY, timeouts=Timeouts(connect=2, read=10, write=10, pool=10)
    )
    return FhirClient(config, creds, vendor=vendor)


def _scrape(world) -> dict[tuple[str, tuple], float]:
    answer = world.client.get("/api/metrics", headers=world.headers("viewer"))
    assert answer.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def _count(samples, vendor: str, rtype: str) -> float:
    key = (("resource_type", rtype), ("vendor", vendor))
    return samples.get(("holovitals_fhir_request_duration_seconds_count", key), 0.0)


def _errors(samples, vendor: str, rtype: str, klass: str) -> float:
    key = (("resource_type", rtype), ("status_class", klass), ("vendor", vendor))
    return samples.get(("holovitals_fhir_request_errors_total", key), 0.0)


def test_latency_and_errors_by_vendor(world, recording, sandbox):
    with _client(sandbox.base_url, "epic") as epic:
        patient_id = next(iter(epic.search("Patient", {"_count": "5"})))["id"]  # one page
        sandbox.set_faults(error_every=2, error_status=503)  # every 2nd call: 503, retried
        for _ in range(3):
            epic.read("Patient", patient_id)
        sandbox.clear_faults()
        with pytest.raises(FhirError):
            epic.read("Patient", "no-such-patient")
    with _client(sandbox.base_url, "athenahealth") as athena:
        next(iter(athena.search("Observation", {"_count": "2"})))

    samples = _scrape(world)
    faults = sandbox.stats()["faults"]
    # search + 3 reads (+ one retried attempt per 503) + the 404; the token call is "token".
    retried = faults.get("error", 0)
    assert retried >= 1
    assert _count(samples, "epic", "Patient") == 1 + 3 + retried + 1
    assert _errors(samples, "epic", "Patient", "5xx") == retried
    assert _errors(samples, "epic", "Patient", "4xx") == 1
    assert _count(samples, "athenahealth", "Observation") >= 1
    assert _errors(samples, "athenahealth", "Observation", "5xx") == 0
    assert _count(samples, "epic", "token") >= 1
    # Cumulative buckets: +Inf holds every attempt, the sum is a positive number of seconds.
    key = (("le", "+Inf"), ("resource_type", "Patient"), ("vendor", "epic"))
    assert samples[("holovitals_fhir_request_duration_seconds_bucket", key)] == _count(
        samples, "epic", "Patient"
    )
    assert (
        samples[
            (
                "holovitals_fhir_request_duration_seconds_sum",
                (("resource_type", "Patient"), ("vendor", "epic")),
            )
        ]
        > 0
    )


def test_unanswered_requests_count_as_network_errors(world, recording):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    creds_free = ClientConfig(base_url=f"http://127.0.0.1:{port}/fhir", retry=RETRY)
    with FhirClient(creds_free, None, vendor="meditech") as client, pytest.raises(FhirError):
        client.read("Patient", "p1")
    samples = _scrape(world)
    assert _errors(samples, "meditech", "Patient", "network") == RETRY.max_attempts
    assert _count(samples, "meditech", "Patient") == RETRY.max_attempts


def test_requests_of_another_process_reach_the_scrape(world, sandbox):
    """A worker is another process: what it records shows in this process's /api/metrics."""
    code = (
        "from holovitals_sync.config import get_settings\n"
        "from holovitals_sync.services.metrics import record_fhir_requests\n"
        "from tests.integration.api.test_fhir_metrics import _client\n"
        "record_fhir_requests(get_settings())\n"
        f"c = _client({sandbox.base_url!r}, 'nextgen')\n"
        "next(iter(c.search('Encounter', {'_count': '1'})))\n"
        "c.capabilities()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    samples = _scrape(world)
    assert _count(samples, "nextgen", "Encounter") == 1
    assert _count(samples, "nextgen", "metadata") >= 1
