"""ADT events become work, against the sandbox EHR and real RQ workers: an admission or an
update syncs the patient PID-3 names (found by identifier search), a burst makes one sync,
cancellations are recorded, a merge marks the merged patient and syncs the survivor, and
messages held for their connection's settings raise an alert until it is saved."""

from __future__ import annotations

import pytest
from sqlmodel import select

from holovitals_sync.config import load_settings
from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    Alert,
    AlertKind,
    AlertStatus,
    HL7Message,
    InboundStatus,
    JobStatus,
    JobType,
    PatientMerge,
    SyncedRecord,
    SyncJob,
)
from holovitals_sync.services.alerts import evaluate
from tests.factories import make_connection
from tests.integration.webhooks.conftest import Workers
from tests.waiting import wait_for

from .conftest import add_feed, adt, send

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def ehr_feed(hl7_db, sandbox) -> tuple[int, object]:
    """A connection to the sandbox EHR with one ADT feed."""
    with session_scope() as session:
        cid = int(
            make_connection(
                session,
                "Sandbox ADT",
                base_url=sandbox.base_url,
                client_id="holovitals-demo",
                client_secret="demo-secret",
                scopes="system/*.read system/*.write",
            ).id
        )
    add_feed(cid)
    return cid, sandbox


@pytest.fixture
def workers(hl7_db, tmp_path):
    pool = Workers(tmp_path)
    pool.start(2)
    yield pool
    pool.stop_all()


def _mrn_of(sandbox, patient_id: str) -> str:
    import httpx

    answer = httpx.get(
        f"{sandbox.base_url}/Patient/{patient_id}",
        headers={"Authorization": f"Bearer {sandbox.token()}"},
    )
    return next(i["value"] for i in answer.json()["identifier"] if i["value"].startswith("MRN"))


def _messages() -> list[HL7Message]:
    with session_scope() as session:
        return list(session.exec(select(HL7Message).order_by(HL7Message.id)))


def _jobs(cid: int) -> list[SyncJob]:
    with session_scope() as session:
        return list(
            session.exec(select(SyncJob).where(SyncJob.connection_id == cid).order_by(SyncJob.id))
        )


def _processed(count: int) -> list[HL7Message]:
    return wait_for(
        lambda: (
            (rows := _messages())
            and len(rows) == count
            and all(r.status != InboundStatus.RECEIVED for r in rows)
            and rows
        ),
        timeout=120,
    )


def test_an_update_syncs_the_patient_and_a_burst_makes_one_sync(ehr_feed, listener, workers):
    cid, sandbox = ehr_feed
    mrn = _mrn_of(sandbox, "pt-00003")
    for n, trigger in enumerate(["A01", "A08", "A08", "A08", "A31"]):
        assert send(listener, adt(trigger, f"B-{n}", mrn=mrn)).code == "AA"
    rows = _processed(5)
    assert {r.patient_id for r in rows} == {"pt-00003"}
    assert all(r.status == InboundStatus.PROCESSED for r in rows), [r.outcome for r in rows]
    [job] = _jobs(cid)  # five messages within the window: one sync
    assert (job.job_type, job.patient_id) == (JobType.PATIENT, "pt-00003")
    assert {r.job_id for r in rows} == {job.id}
    wait_for(lambda: _jobs(cid)[0].status == JobStatus.COMPLETED, timeout=60)
    with session_scope() as session:
        assert (
            session.exec(
                select(SyncedRecord).where(
                    SyncedRecord.connection_id == cid,
                    SyncedRecord.resource_type == "Patient",
                    SyncedRecord.remote_id == "pt-00003",
                )
            ).first()
            is not None
        )

    # A later update is a new sync (the first one is done); its repeat is not processed again.
    assert send(listener, adt("A08", "LATER-1", mrn=mrn)).code == "AA"
    assert send(listener, adt("A08", "LATER-1", mrn=mrn)).code == "AA"
    _processed(6)
    assert len(_jobs(cid)) == 2


def test_cancellations_are_recorded_and_unknown_patients_fail(ehr_feed, listener, workers):
    cid, sandbox = ehr_feed
    mrn = _mrn_of(sandbox, "pt-00004")
    assert send(listener, adt("A11", "C-1", mrn=mrn)).code == "AA"
    assert send(listener, adt("A13", "C-2", mrn=mrn)).code == "AA"
    assert send(listener, adt("A08", "C-3", mrn="MRN9999999")).code == "AA"
    assert send(listener, adt("A08", "C-4", mrn=mrn, authority="NOWHERE")).code == "AA"
    cancel_admit, cancel_discharge, unknown, no_system = _processed(4)
    assert (cancel_admit.status, cancel_admit.outcome) == (
        InboundStatus.PROCESSED,
        "A11: cancellation recorded",
    )
    assert cancel_discharge.outcome == "A13: cancellation recorded"
    assert unknown.status == InboundStatus.FAILED
    assert "no single patient" in unknown.outcome
    assert no_system.status == InboundStatus.FAILED
    assert "assigning authority" in no_system.outcome
    assert _jobs(cid) == []


def test_a_merge_marks_the_merged_patient_and_syncs_the_survivor(ehr_feed, listener, workers):
    cid, sandbox = ehr_feed
    survivor, merged = "pt-00005", "pt-00006"
    survivor_mrn, merged_mrn = _mrn_of(sandbox, survivor), _mrn_of(sandbox, merged)
    # HoloVitals holds the chart that is merged away (a registration synced it).
    assert send(listener, adt("A04", "M-0", mrn=merged_mrn)).code == "AA"
    _processed(1)
    wait_for(lambda: all(j.status == JobStatus.COMPLETED for j in _jobs(cid)), timeout=60)

    assert send(listener, adt("A40", "M-1", mrn=survivor_mrn, merged_mrn=merged_mrn)).code == "AA"
    merge_row = _processed(2)[1]
    assert merge_row.status == InboundStatus.PROCESSED, merge_row.outcome
    assert merge_row.patient_id == survivor
    with session_scope() as session:
        link = session.exec(select(PatientMerge).where(PatientMerge.connection_id == cid)).one()
    assert (link.merged_patient_id, link.survivor_patient_id) == (merged, survivor)
    assert _jobs(cid)[-1].patient_id == survivor

    # A late update about the merged chart syncs the survivor.
    assert send(listener, adt("A08", "M-2", mrn=merged_mrn)).code == "AA"
    late = _processed(3)[2]
    assert late.patient_id == survivor


@pytest.fixture
def keyless_feed(hl7_db, sandbox) -> tuple[int, object]:
    """A connection to the sandbox asking for SMART Backend Services, with no key given."""
    from holovitals_sync.models import AuthMethod

    with session_scope() as session:
        cid = int(
            make_connection(
                session,
                "ADT without a key",
                base_url=sandbox.base_url,
                client_id="holovitals-demo",
                auth_method=AuthMethod.SMART_BACKEND,
                client_secret=None,
                scopes="system/*.read",
            ).id
        )
    add_feed(cid)
    return cid, sandbox


def _held_alerts(redis_client) -> list[Alert]:
    settings = load_settings(alert_queue_depth=10_000)
    with session_scope() as session:
        evaluate(session, redis_client, settings)
    with session_scope() as session:
        return list(session.exec(select(Alert).where(Alert.kind == AlertKind.HL7_HELD)))


def test_a_connection_missing_a_setting_holds_its_messages_until_it_is_saved(
    keyless_feed, listener, workers, redis_client
):
    """SMART Backend Services without a key: no retry can help, so the messages fail at once
    with the setting named, an alert says they are held, and saving the connection processes
    them (they were acknowledged, and the hospital will not send them again) and closes it."""
    from holovitals_sync.models import AuditLog, AuthMethod, EHRConnection
    from holovitals_sync.services.connections import ConnectionPatch, update_connection
    from holovitals_sync.services.hl7.held import HELD
    from tests.factories import SYSTEM

    cid, sandbox = keyless_feed
    mrn = _mrn_of(sandbox, "pt-00005")
    assert send(listener, adt("A08", "K-1", mrn=mrn)).code == "AA"
    assert send(listener, adt("A08", "K-2", mrn=mrn)).code == "AA"
    rows = _processed(2)
    assert [r.status for r in rows] == [InboundStatus.FAILED] * 2
    assert all(r.outcome.startswith(HELD) for r in rows), [r.outcome for r in rows]
    assert "private key" in rows[0].outcome  # the setting, named
    assert _jobs(cid) == []
    [alert] = _held_alerts(redis_client)
    assert (alert.status, alert.connection_id, alert.subject) == (
        AlertStatus.OPEN,
        cid,
        f"connection:{cid}:hl7-held",
    )
    assert alert.message.startswith(f"2 HL7 messages of connection {cid} are held")

    with session_scope() as session:
        row = session.get(EHRConnection, cid)
        patch = ConnectionPatch(
            auth_method=AuthMethod.CLIENT_SECRET_BASIC, client_secret="demo-secret"
        )
        update_connection(session, row=row, patch=patch, actor=SYSTEM)
        session.commit()
    rows = wait_for(
        lambda: (
            (rows := _messages())
            and all(r.status == InboundStatus.PROCESSED for r in rows)
            and rows
        ),
        timeout=120,
    )
    assert {r.patient_id for r in rows} == {"pt-00005"}
    [job] = _jobs(cid)  # both messages, one sync
    assert job.patient_id == "pt-00005"
    with session_scope() as session:
        audit = session.exec(select(AuditLog).where(AuditLog.action == "connection.update")).one()
    assert audit.details["hl7_messages_released"] == 2
    [closed] = _held_alerts(redis_client)
    assert closed.id == alert.id and closed.status == AlertStatus.CLOSED
