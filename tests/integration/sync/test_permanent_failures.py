"""Failures no retry can fix end the job at once; failures that may pass keep their retries.

A patient the EHR does not have answers 404 on every attempt: retried, it held a worker and
failed again and again (1,848 such jobs, four attempts each, in a load test). A job for a type
the connection does not serve is refused before anything is queued.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from holovitals_sync.db import session_scope
from holovitals_sync.models import AuditLog, JobType, SyncedRecord, SyncJob, WebhookDelivery
from holovitals_sync.services.orchestration import InvalidJob
from tests.factories import make_subscription
from tests.integration.sync.conftest import start, wait_status


def test_a_patient_the_ehr_does_not_have_fails_at_once(connection, ehr, workers):
    workers.start(1)
    job = wait_status(
        start(connection.id, JobType.PATIENT, patient_id="no-such-patient"), "failed", timeout=60
    )
    assert job.attempts == 1, job.last_error
    assert job.max_attempts > 1  # retries were allowed: the 404 itself stopped them
    assert job.last_error.endswith("(not retried: the EHR does not have it)")
    # The worker says so in one line: no stack, and nothing that names the patient.
    log = (workers.log_dir / "worker-0.log").read_text()
    assert "failed: ResourceNotFound: HTTP 404 (not retried" in log
    assert "Traceback" not in log and "no-such-patient" not in log


def test_a_patient_the_ehr_deleted_is_marked_gone(connection, ehr, workers):
    workers.start(1)
    assert wait_status(start(connection.id), "completed").created > 0
    with session_scope() as session:
        pid = session.exec(
            select(SyncedRecord.remote_id)
            .where(SyncedRecord.resource_type == "Patient")
            .order_by(SyncedRecord.remote_id)
        ).first()
    ehr.state.store.delete("Patient", pid)
    with session_scope() as session:
        sub_id = make_subscription(session, event_types=["patient.deleted"]).id
    job = wait_status(start(connection.id, JobType.PATIENT, patient_id=pid), "failed", timeout=60)
    assert job.attempts == 1 and "(not retried: the EHR" in job.last_error
    with session_scope() as session:
        record = session.exec(
            select(SyncedRecord).where(
                SyncedRecord.connection_id == connection.id,
                SyncedRecord.resource_type == "Patient",
                SyncedRecord.remote_id == pid,
            )
        ).one()
        others = session.exec(
            select(func.count())
            .select_from(SyncedRecord)
            .where(SyncedRecord.resource_type == "Patient", SyncedRecord.deleted == sa.true())
        ).one()
        announced = session.exec(
            select(WebhookDelivery.event_type).where(WebhookDelivery.subscription_id == sub_id)
        ).all()
    assert record.deleted
    assert record.delete_reason == f"not found at the EHR by patient sync {job.id}"
    assert others == 1  # only that patient
    assert announced == ["patient.deleted"]


def test_a_passing_failure_is_retried_until_the_attempts_run_out(connection, ehr, workers):
    ehr.set_faults(error_every=1, error_status=503, retry_after=0)  # the EHR is down
    workers.start(1)
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "failed", timeout=120)
    assert job.attempts == job.max_attempts > 1
    assert "not retried" not in (job.last_error or "")


def test_a_type_the_connection_does_not_serve_is_refused_before_queueing(connection):
    with session_scope() as session:
        jobs, audited = (
            session.exec(select(func.count()).select_from(m)).one() for m in (SyncJob, AuditLog)
        )
    with pytest.raises(InvalidJob) as refused:
        start(connection.id, JobType.RESOURCE, resource_type="Patientz")
    assert refused.value.field == "resource_type"
    assert "'Patientz'" in str(refused.value) and "Observation" in str(refused.value)
    with session_scope() as session:
        assert session.exec(select(func.count()).select_from(SyncJob)).one() == jobs
        assert session.exec(select(func.count()).select_from(AuditLog)).one() == audited
