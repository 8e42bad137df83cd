"""Retries, Retry-After, token renewal and what is never retried, against the sandbox."""

import time

import pytest

from holovitals_sync.fhir import (
    AuthenticationError,
    FhirClient,
    OperationOutcomeError,
    RateLimited,
    RetryPolicy,
    ServerError,
    TransportError,
)


def fhir_statuses(sandbox) -> list[int]:
    """Statuses of the requests the sandbox saw on /fhir (admin calls left out), in order."""
    return [r["status"] for r in sandbox.stats()["recent"] if r["path"].startswith("/fhir")]


def test_429_storm_survived_honouring_retry_after(client: FhirClient, sandbox) -> None:
    patient_id = next(client.search("Patient"))["id"]
    sandbox.reset()
    sandbox.set_faults(storm=4, retry_after=0.25)
    started = time.monotonic()
    assert client.read("Patient", patient_id)["id"] == patient_id
    elapsed = time.monotonic() - started
    statuses = fhir_statuses(sandbox)
    assert statuses == [429, 429, 429, 429, 200]
    # Every 429 carried Retry-After: 0.25; the client waited at least their sum.
    assert elapsed >= statuses.count(429) * 0.25


def test_rate_limited_after_retries_exhausted(make_client, sandbox) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02))
    client.capabilities()  # token first: the token endpoint is outside the fault counter
    next(client.search("Patient"))
    sandbox.reset()
    sandbox.set_faults(storm=10, retry_after=0)
    with pytest.raises(RateLimited):
        list(client.search("Patient"))
    assert fhir_statuses(sandbox) == [429, 429, 429]


def test_5xx_burst_retried_during_paging(client: FhirClient, sandbox) -> None:
    (count_page,) = client.search_pages("Observation", {"_summary": "count"})
    sandbox.set_faults(error_every=3, error_status=503, retry_after=0)
    ids = [r["id"] for r in client.search("Observation", page_size=200)]
    assert len(ids) == len(set(ids)) == count_page["total"]
    stats = sandbox.stats()
    assert stats["faults"]["error"] >= 2
    assert stats["by_status"]["503"] == stats["faults"]["error"]


def test_sustained_5xx_raises_server_error_after_all_attempts(client: FhirClient, sandbox) -> None:
    client.capabilities()
    next(client.search("Patient"))
    sandbox.reset()
    client.core.client.headers["X-Sandbox-Fault"] = "status=502"
    with pytest.raises(ServerError) as info:
        list(client.search("Patient"))
    assert info.value.status == 502
    assert fhir_statuses(sandbox) == [502] * client.config.retry.max_attempts


def test_400_not_retried(client: FhirClient, sandbox) -> None:
    next(client.search("Patient"))  # token fetched before counting
    sandbox.reset()
    with pytest.raises(OperationOutcomeError) as info:
        list(client.search("Patient", {"no-such-param": "x"}))
    assert info.value.status == 400
    assert info.value.issues and info.value.issues[0].code
    assert fhir_statuses(sandbox) == [400]


def test_dropped_connection_retried_on_reads(client: FhirClient, sandbox) -> None:
    expected = {r["id"] for r in client.search("Encounter", page_size=50)}
    sandbox.set_faults(drop_connection_every=2)
    ids = [r["id"] for r in client.search("Encounter", page_size=50)]
    assert set(ids) == expected and len(ids) == len(expected)
    assert sandbox.stats()["faults"]["drop_connection"] >= 2


def test_dropped_connection_not_retried_on_create(client: FhirClient, sandbox) -> None:
    next(client.search("Patient"))
    sandbox.reset()
    client.core.client.headers["X-Sandbox-Fault"] = "drop"
    with pytest.raises(TransportError):
        client.create({"resourceType": "Patient", "name": [{"family": "Test"}]})
    # A POST that may have reached the server is not repeated: it could create twice.
    assert len(fhir_statuses(sandbox)) == 1


def test_expired_token_renewed_once_mid_run(client: FhirClient, sandbox) -> None:
    expected = {r["id"] for r in client.search("Condition", page_size=20)}
    issued_before = sandbox.stats()["tokens_issued"]
    renewals_before = client.core.auth.renewals
    sandbox.set_faults(expire_token_after=3)
    ids = {r["id"] for r in client.search("Condition", page_size=20)}
    assert ids == expected
    assert client.core.auth.renewals - renewals_before == 1
    stats = sandbox.stats()
    assert stats["tokens_issued"] - issued_before == 1
    assert stats["by_status"]["401"] == 1


def test_token_renewed_before_expiry(make_client, sandbox) -> None:
    sandbox.configure(token_lifetime_seconds=1)
    client = make_client()
    next(client.search("Patient"))
    time.sleep(1.0)  # within the renewal margin (10% of 1 s) the token is renewed up front
    next(client.search("Patient"))
    assert client.core.auth.renewals == 2
    assert "401" not in sandbox.stats()["by_status"]


def test_second_401_raises_authentication_error(client: FhirClient, sandbox) -> None:
    next(client.search("Patient"))
    sandbox.reset()
    client.core.client.headers["X-Sandbox-Fault"] = "expire_token"
    with pytest.raises(AuthenticationError) as info:
        client.read("Patient", "anything")
    assert "refused the access token" in str(info.value)
    assert client.core.auth.renewals == 2  # the first token and exactly one renewal
    stats = sandbox.stats()
    assert stats["by_status"]["401"] == 2
    assert stats["fhir_calls"] == 2


def test_client_side_rate_limit_paces_requests(make_client, sandbox) -> None:
    # 240/min: a burst of 24, then one request every 0.25 s (token call included).
    client = make_client(requests_per_minute=240)
    patient_id = next(client.search("Patient"))["id"]
    started = time.monotonic()
    for _ in range(26):
        client.read("Patient", patient_id)
    assert time.monotonic() - started >= 0.9
    assert "429" not in sandbox.stats()["by_status"]


def test_threads_sharing_a_client_renew_the_token_once(client: FhirClient, sandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    patient_ids = [p["id"] for p in client.search("Patient", page_size=16)][:16]
    sandbox.expire_tokens()  # every thread's next request is refused once
    with ThreadPoolExecutor(max_workers=8) as pool:
        read = list(pool.map(lambda pid: client.read("Patient", pid)["id"], patient_ids))
    assert read == patient_ids
    assert client.core.auth.renewals == 2  # the first token and one renewal for all threads
