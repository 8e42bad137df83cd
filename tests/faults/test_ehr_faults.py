"""The EHR misbehaving (sandbox fault injection): every run ends completed, or failed with
a clear reason, and what is stored is never partial (each stored record equals the EHR's,
each is stored once)."""

from __future__ import annotations

import pytest

from holovitals_sync.db import session_scope
from holovitals_sync.models import JobType, SyncJob
from holovitals_sync.services.orchestration import retry_job
from tests.integration.sync.conftest import TESTER, start, wait_status

from .conftest import assert_matches_sandbox, local_hashes, record_count, remote_hashes

pytestmark = pytest.mark.timeout(240)


def run(connection_id: int, job_type: JobType = JobType.FULL, timeout: float = 120) -> SyncJob:
    return wait_status(start(connection_id, job_type), "completed", "failed", timeout=timeout)


def assert_never_partial(connection_id: int, ehr) -> None:
    """Whatever is stored is whole: content-equal to the EHR's copy, one row each."""
    ehr.clear_faults()  # this check reads the EHR too
    expected = remote_hashes(ehr)
    local = local_hashes(connection_id)
    assert {key: expected.get(key) for key in local} == local
    assert record_count(connection_id) == len(local)


def test_429_storm_past_the_client_retries_waits_retry_after_between_job_attempts(
    connection, ehr, pools
):
    # 12 x 429: the client's five tries per request give up twice, so the job itself is
    # retried twice; each RQ retry must wait the EHR's Retry-After (configured backoff 0).
    retry_after = 1
    pools.start("sync")
    ehr.set_faults(storm=12, retry_after=retry_after)
    job = run(connection.id)
    assert job.status.value == "completed", job.last_error
    assert job.attempts == 3 and job.last_error == "RateLimited: HTTP 429"
    assert ehr.stats()["by_status"].get("429") == 12
    limited = [r["t"] for r in ehr.stats()["recent"] if r["status"] == 429]
    gaps = [b - a for a, b in zip(limited, limited[1:], strict=False)]
    # Between the client's own tries and between the job's attempts alike.
    assert min(gaps) >= retry_after - 0.05, gaps
    ehr.clear_faults()
    assert_matches_sandbox(connection.id, ehr)


def test_5xx_burst_is_retried_and_completes(connection, ehr, pools):
    pools.start("sync")
    ehr.configure(export_file_max_lines=10)
    ehr.set_faults(error_every=3, error_status=503, retry_after=0.1)
    job = run(connection.id)
    assert job.status.value == "completed", job.last_error
    assert ehr.stats()["by_status"].get("503", 0) >= 3
    ehr.clear_faults()
    assert_matches_sandbox(connection.id, ehr)


def test_persistent_500_fails_with_a_clear_reason_then_retry_completes(connection, ehr, pools):
    pools.start("sync")
    ehr.configure(export_file_max_lines=10)
    ehr.set_faults(error_every=9, error_status=500)
    job = run(connection.id)
    assert job.status.value == "failed"
    assert job.last_error == "ServerError: HTTP 500" and job.attempts == job.max_attempts
    assert_never_partial(connection.id, ehr)

    ehr.clear_faults()
    with session_scope() as s:
        retry_job(s, job_id=job.id, actor=TESTER)
    job = wait_status(job.id, "completed", "failed", timeout=90)
    assert job.status.value == "completed", job.last_error
    assert_matches_sandbox(connection.id, ehr)


def test_timeouts_fail_clearly_and_keep_nothing_partial(connection, ehr, pools, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_HTTP_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("HOLOVITALS_RETRY_ATTEMPTS", "1")  # one attempt says it all
    pools.start("sync")
    ehr.set_faults(latency_ms=1500)
    job = run(connection.id, JobType.INCREMENTAL, timeout=180)
    assert job.status.value == "failed"
    assert job.last_error in ("TransportError", "ReadTimeout"), job.last_error
    assert record_count(connection.id) == 0


def test_dropped_connections_are_retried(connection, ehr, pools):
    pools.start("sync")
    ehr.set_faults(drop_connection_every=4)
    job = run(connection.id, JobType.INCREMENTAL)
    assert job.status.value == "completed", job.last_error
    assert ehr.stats()["faults"].get("drop_connection", 0) >= 1
    ehr.clear_faults()
    assert_matches_sandbox(connection.id, ehr)


def test_token_expiry_mid_sync_renews_the_token(connection, ehr, pools):
    pools.start("sync")
    ehr.configure(default_page_size=20)
    ehr.set_faults(expire_token_after=4)
    job = run(connection.id, JobType.INCREMENTAL)
    assert job.status.value == "completed", job.last_error
    assert ehr.stats()["tokens_issued"] >= 2
    ehr.clear_faults()
    assert_matches_sandbox(connection.id, ehr)


@pytest.mark.parametrize("kind", ["json", "bundle"])
def test_a_malformed_page_fails_the_attempt_and_the_retry_completes(connection, ehr, pools, kind):
    pools.start("sync")
    assert run(connection.id).status.value == "completed"  # a cursor: incremental pages
    ehr.clinic_day(changes=60)
    ehr.configure(default_page_size=10)
    ehr.set_faults(malformed_page=2, malformed_kind=kind)
    job = run(connection.id, JobType.INCREMENTAL)
    assert ehr.stats()["faults"].get("malformed_page") == 1
    assert job.status.value == "completed", job.last_error
    assert job.attempts == 2 and job.last_error.startswith("MalformedResponse")
    assert_matches_sandbox(connection.id, ehr)


def test_truncated_export_files_never_store_a_partial_record(connection, ehr, pools):
    pools.start("sync")
    ehr.set_faults(truncated_ndjson=True)
    job = run(connection.id)
    # Every file of every attempt is cut: the run cannot complete, and says why.
    if job.status.value == "failed":
        assert job.last_error.startswith(("TruncatedFile", "MalformedResponse")), job.last_error
    assert_never_partial(connection.id, ehr)
    ehr.clear_faults()
    assert run(connection.id).status.value == "completed"
    assert_matches_sandbox(connection.id, ehr)


def test_resources_changing_between_pages_converge_on_the_next_run(connection, ehr, pools):
    pools.start("sync")
    assert run(connection.id).status.value == "completed"
    ehr.configure(default_page_size=10)
    ehr.set_faults(latency_ms=100)
    first_changes = ehr.clinic_day(changes=60)
    job_id = start(connection.id, JobType.INCREMENTAL)
    wait_status(job_id, "running", timeout=30)
    ehr.clinic_day(changes=40)  # while the run pages through the first day's changes
    job = wait_status(job_id, "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error
    assert job.fetched >= sum(len(ids) for ids in first_changes["changed"].values())
    assert_never_partial(connection.id, ehr)
    ehr.clear_faults()
    assert run(connection.id, JobType.INCREMENTAL).status.value == "completed"
    assert_matches_sandbox(connection.id, ehr)
