"""Deletes at the EHR: found by a complete full sync and by the id sweep, tombstoned (kept,
marked, announced), a conflict where HoloVitals changed the record meanwhile, and never a
mass tombstoning from an answer that looks broken.

The sandbox here is this module's own: deletes must not leak into other tests' data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    Conflict,
    ConflictKind,
    EHRConnection,
    JobType,
    RecordError,
    ResolutionStrategy,
    Severity,
    SyncedRecord,
    WebhookDelivery,
)
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.server import SandboxServer
from holovitals_sync.services.audit import Actor
from holovitals_sync.services.conflicts import resolve
from tests.factories import make_connection, make_subscription
from tests.integration.sync.conftest import start, wait_status

NURSE = Actor.system("nurse-on-duty")


@pytest.fixture
def own_ehr() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(patients=4, seed=31)) as server:
        yield server


@pytest.fixture
def linked(sync_db: str, own_ehr: SandboxServer) -> EHRConnection:
    with session_scope() as session:
        return make_connection(
            session,
            "Deleting Hospital",
            base_url=own_ehr.base_url,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            scopes="system/*.read system/*.write",
        )


def _record(connection_id: int, rtype: str, rid: str) -> SyncedRecord:
    with session_scope() as session:
        return session.exec(
            select(SyncedRecord).where(
                SyncedRecord.connection_id == connection_id,
                SyncedRecord.resource_type == rtype,
                SyncedRecord.remote_id == rid,
            )
        ).one()


def _alive(ehr: SandboxServer, rtype: str) -> list[str]:
    return sorted(r.id for r in ehr.state.store.candidates(rtype))


def test_a_full_sync_tombstones_what_the_ehr_deleted(linked, own_ehr, workers):
    with session_scope() as session:
        sub = make_subscription(
            session,
            url="http://10.0.0.1/hook",
            event_types=["observation.deleted", "condition.deleted"],
        ).id
    workers.start(1)
    wait_status(start(linked.id), "completed")
    gone_obs, changed_obs, kept_obs = _alive(own_ehr, "Observation")[:3]
    gone_cond = _alive(own_ehr, "Condition")[0]
    # HoloVitals changed one of the Observations the EHR is about to delete.
    with session_scope() as session:
        row = session.get(SyncedRecord, _record(linked.id, "Observation", changed_obs).id)
        row.local_body = {**row.local_copy, "status": "amended"}
        row.dirty = True
    for rtype, rid in (
        ("Observation", gone_obs),
        ("Observation", changed_obs),
        ("Condition", gone_cond),
    ):
        own_ehr.state.store.delete(rtype, rid)

    job = wait_status(start(linked.id), "completed")
    assert job.deleted == 2 and job.conflicts == 1
    for rtype, rid in (("Observation", gone_obs), ("Condition", gone_cond)):
        tomb = _record(linked.id, rtype, rid)
        assert tomb.deleted and tomb.deleted_at is not None  # kept, marked
        assert f"full sync {job.id}" in tomb.delete_reason and tomb.remote_body is not None
    assert not _record(linked.id, "Observation", kept_obs).deleted
    # Deleted there, changed here: not a silent tombstone, a decision for a person.
    held = _record(linked.id, "Observation", changed_obs)
    assert not held.deleted and held.conflict_pending
    with session_scope() as session:
        conflict = session.exec(select(Conflict).where(Conflict.record_id == held.id)).one()
        events = sorted(
            d.event_type
            for d in session.exec(
                select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub)
            )
        )
    assert conflict.kind is ConflictKind.REMOTE_DELETED and conflict.severity is Severity.HIGH
    assert events == ["condition.deleted", "observation.deleted"]

    # Nothing more to find: a second full sync deletes and announces nothing again.
    again = wait_status(start(linked.id), "completed")
    assert again.deleted == 0 and again.conflicts == 0

    # The nurse confirms the delete: the changed record is tombstoned too.
    with session_scope() as session:
        resolve(
            session,
            conflict_id=conflict.id,
            strategy=ResolutionStrategy.USE_REMOTE,
            reason="the EHR removed a wrong-patient result",
            actor=NURSE,
        )
    confirmed = _record(linked.id, "Observation", changed_obs)
    assert confirmed.deleted and not confirmed.dirty and not confirmed.conflict_pending


def test_an_answer_without_a_type_tombstones_nothing_of_it(linked, own_ehr, workers):
    workers.start(1)
    wait_status(start(linked.id), "completed")
    immunizations = _alive(own_ehr, "Immunization")
    assert immunizations
    for rid in immunizations:  # or a server that silently matches nothing: the same answer
        own_ehr.state.store.delete("Immunization", rid)
    job = wait_status(start(linked.id), "completed")
    assert job.deleted == 0
    assert not any(_record(linked.id, "Immunization", rid).deleted for rid in immunizations)
    with session_scope() as session:
        warning = session.exec(
            select(RecordError).where(
                RecordError.job_id == job.id, RecordError.resource_type == "Immunization"
            )
        ).one()
    assert warning.message.startswith("[delete] the EHR returned no Immunization at all")


def test_the_id_sweep_finds_deletes_and_a_record_served_again_comes_back(linked, own_ehr, workers):
    workers.start(1)
    wait_status(start(linked.id), "completed")
    victim = _alive(own_ehr, "Encounter")[0]
    body = own_ehr.state.store.get("Encounter", victim).resource()
    own_ehr.state.store.delete("Encounter", victim)
    before = len(own_ehr.stats()["recent"])
    sweep = wait_status(start(linked.id, JobType.SWEEP), "completed")
    assert sweep.deleted == 1 and _record(linked.id, "Encounter", victim).deleted
    asked = [r for r in own_ehr.stats()["recent"][before:] if "_elements=id" in r["query"]]
    assert asked  # ids only, not whole resources

    own_ehr.state.store.update(body)  # the EHR restores it
    back = wait_status(start(linked.id), "completed")
    restored = _record(linked.id, "Encounter", victim)
    assert not restored.deleted and restored.deleted_at is None and back.updated >= 1


def test_an_incremental_sync_reads_deletes_from_the_type_history(linked, own_ehr, workers):
    workers.start(1)
    wait_status(start(linked.id), "completed")
    gone, back = _alive(own_ehr, "Condition")[:2]
    own_ehr.state.store.delete("Condition", gone)
    body = own_ehr.state.store.get("Condition", back).resource()
    own_ehr.state.store.delete("Condition", back)
    own_ehr.state.store.update(body)  # deleted, then restored: its latest entry is no delete
    job = wait_status(start(linked.id, JobType.INCREMENTAL), "completed")
    assert job.deleted == 1
    tomb = _record(linked.id, "Condition", gone)
    assert tomb.deleted and "history" in tomb.delete_reason
    assert not _record(linked.id, "Condition", back).deleted
    asked = [r for r in own_ehr.stats()["recent"] if r["path"] == "/fhir/Condition/_history"]
    assert asked and "_since=" in asked[-1]["query"]
