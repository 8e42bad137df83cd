"""Deletes announced by notifications (#22): the sandbox EHR deletes resources and says so
over HTTP, as a FHIR Subscription (a DELETE history entry, id-only) and as a vendor event;
the receiver stores the events, a patient sync follows, and its run reads each announced
resource again. A 404 there tombstones the record (announced, counted on the job); a record
HoloVitals changed meanwhile becomes a conflict; a resource still there stays live.

The sandbox here is this module's own: deletes must not leak into other tests' data.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    Conflict,
    ConflictKind,
    InboundEvent,
    InboundStatus,
    JobType,
    SyncedRecord,
    SyncJob,
    WebhookDelivery,
)
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.server import SandboxServer
from tests.factories import make_connection, make_subscription
from tests.integration.sync.conftest import start, wait_status
from tests.waiting import wait_for


@pytest.fixture
def own_ehr() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(patients=3, seed=47)) as server:
        yield server


def _connect(backend, ehr: SandboxServer) -> tuple[int, str]:
    with session_scope() as session:
        cid = make_connection(
            session,
            "Notifying Hospital",
            base_url=ehr.base_url,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            scopes="system/*.read system/*.write",
        ).id
    answer = httpx.put(
        f"{backend.url}/api/connections/{cid}/inbound-auth",
        json={"auth": "holovitals_hmac"},
        headers=backend.headers("admin"),
    )
    assert answer.status_code == 200, answer.text
    return cid, answer.json()["secret"]


def _record(connection_id: int, rtype: str, rid: str) -> SyncedRecord:
    with session_scope() as session:
        return session.exec(
            select(SyncedRecord).where(
                SyncedRecord.connection_id == connection_id,
                SyncedRecord.resource_type == rtype,
                SyncedRecord.remote_id == rid,
            )
        ).one()


def _event_jobs(connection_id: int) -> list[SyncJob]:
    with session_scope() as session:
        events = list(
            session.exec(select(InboundEvent).where(InboundEvent.connection_id == connection_id))
        )
        if not events or any(e.status is not InboundStatus.PROCESSED for e in events):
            return []
        ids = {e.job_id for e in events}
        jobs = list(session.exec(select(SyncJob).where(SyncJob.id.in_(ids))))  # type: ignore
    return jobs if all(j.status.finished for j in jobs) else []


def test_a_notified_delete_is_read_again_and_tombstoned(backend, own_ehr, workers):
    cid, secret = _connect(backend, own_ehr)
    with session_scope() as session:
        sub = make_subscription(
            session, url="http://10.0.0.1/hook", event_types=["observation.deleted"]
        ).id
    workers.start(1)
    wait_status(start(cid), "completed")
    store = own_ehr.state.store
    by_fhir, by_vendor, changed, kept = sorted(r.id for r in store.candidates("Observation"))[:4]
    with session_scope() as session:  # HoloVitals changed one the EHR is about to delete
        row = session.get(SyncedRecord, _record(cid, "Observation", changed).id)
        row.local_body = {**row.local_copy, "status": "amended"}
        row.dirty = True
    for rid in (by_fhir, by_vendor, changed):
        store.delete("Observation", rid)
    before = len(own_ehr.stats()["recent"])

    url = backend.inbound(cid)
    notes = [
        ("event-notification", by_fhir),
        ("vendor-event", by_vendor),
        ("event-notification", changed),
        ("event-notification", kept),
    ]
    for kind, rid in notes:  # id-only: the deleted ones as DELETE entries, as EHRs send them
        answer = own_ehr.notify(
            url, secret, kind=kind, payload="id-only", resource=f"Observation/{rid}"
        )
        assert answer["status"] == 202, answer
    jobs = wait_for(lambda: _event_jobs(cid), timeout=120)

    # Each event cost a patient's sync (the record held here named the patient), not a
    # search of every Observation, and every job completed.
    assert {j.job_type for j in jobs} == {JobType.PATIENT}
    assert all(j.status.value == "completed" for j in jobs), [j.last_error for j in jobs]
    assert sum(j.deleted for j in jobs) == 2 and sum(j.conflicts for j in jobs) == 1
    for rid in (by_fhir, by_vendor):
        tomb = _record(cid, "Observation", rid)
        assert tomb.deleted and tomb.deleted_at is not None and tomb.remote_body is not None
        assert "notified" in tomb.delete_reason
    held = _record(cid, "Observation", changed)
    assert not held.deleted and held.conflict_pending
    assert not _record(cid, "Observation", kept).deleted
    with session_scope() as session:
        conflict = session.exec(select(Conflict).where(Conflict.record_id == held.id)).one()
        announced = sorted(
            d.event_type
            for d in session.exec(
                select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub)
            )
        )
    assert conflict.kind is ConflictKind.REMOTE_DELETED
    assert announced == ["observation.deleted", "observation.deleted"]
    # The run asked the EHR about each focus itself, and only about those.
    reads = {
        r["path"]
        for r in own_ehr.stats()["recent"][before:]
        if r["path"].startswith("/fhir/Observation/")
    }
    assert reads == {f"/fhir/Observation/{rid}" for rid in (by_fhir, by_vendor, changed, kept)}
