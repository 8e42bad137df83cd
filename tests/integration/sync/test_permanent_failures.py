"""Failures no retry can fix end the job at once; failures that may pass keep their retries.

A patient the EHR does not have answers 404 on every attempt: retried, it held a worker and
failed again and again (1,848 such jobs, four attempts each, in a load test). A job for a type
the connection does not serve is refused before anything is queued.
"""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from holovitals_sync.db import session_scope
from holovitals_sync.models import AuditLog, JobType, SyncJob
from holovitals_sync.services.orchestration import InvalidJob
from tests.integration.sync.conftest import start, wait_status


def test_a_patient_the_ehr_does_not_have_fails_at_once(connection, ehr, workers):
    workers.start(1)
    job = wait_status(start(connection.id, JobType.PATIENT, patient_id="no-such-patient"),
                      "failed", timeout=60)
    assert job.attempts == 1, job.last_error
    assert job.max_attempts > 1  # retries were allowed: the 404 itself stopped them
    assert job.last_error.endswith("(not retried: the EHR does not have it)")


def test_a_passing_failure_is_retried_until_the_attempts_run_out(connection, ehr, workers):
    ehr.set_faults(error_every=1, error_status=503, retry_after=0)  # the EHR is down
    workers.start(1)
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "failed", timeout=120)
    assert job.attempts == job.max_attempts > 1
    assert "not retried" not in (job.last_error or "")


def test_a_type_the_connection_does_not_serve_is_refused_before_queueing(connection):
    with session_scope() as session:
        jobs, audited = (session.exec(select(func.count()).select_from(m)).one()
                         for m in (SyncJob, AuditLog))
    with pytest.raises(InvalidJob) as refused:
        start(connection.id, JobType.RESOURCE, resource_type="Patientz")
    assert refused.value.field == "resource_type"
    assert "'Patientz'" in str(refused.value) and "Observation" in str(refused.value)
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(SyncJob)).one() == jobs
        assert session.exec(select(func.count()).select_from(AuditLog)).one() == audited
