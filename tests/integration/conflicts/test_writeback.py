"""A resolution's write back to the EHR: owed by the resolution, done by the conflicts job.

`resolve` never talks to the EHR (#24, point 4): it stores the resolution with the
write-back `queued`, and `writeback.run` (what the conflicts queue runs) writes it once,
records the outcome and leaves nothing owed. The fake EHR here answers like a FHIR server
(If-Match, 412, versions); test_sandbox and the worker test below use the sandbox EHR.
"""

from __future__ import annotations

import os

import pytest
from rq import Queue
from rq.job import Job
from sqlmodel import select

from holovitals_sync.config import get_settings
from holovitals_sync.db import session_scope
from holovitals_sync.fhir.errors import OperationOutcomeError, ServerError
from holovitals_sync.models import (
    ActorKind,
    AuditLog,
    Conflict,
    ConflictKind,
    ConflictStatus,
    ResolutionStrategy,
    SyncedRecord,
)
from holovitals_sync.models.types import utcnow
from holovitals_sync.services.audit import Actor
from holovitals_sync.services.conflicts import Incoming, detect_batch, resolve, writeback
from tests.conftest import REDIS_TEST_URL

from .conftest import FakeEHR, make_record, patient, run_conflicts_worker

S = ResolutionStrategy
ALICE = Actor(ActorKind.USER, "alice")


def _conflict(world, remote_id: str = "p1") -> tuple[int, int, dict]:
    base = patient(id=remote_id)
    local = patient(id=remote_id, gender="female", active=False)
    rid = make_record(world, base=base, local=local, remote_id=remote_id)
    remote = patient("2", id=remote_id, gender="other", birthDate="1980-01-01")
    with session_scope() as session:
        record = session.get(SyncedRecord, rid)
        (outcome,) = detect_batch(
            session, world.connection_id, world.job_id, [Incoming(record, remote, "2")]
        )
    return rid, outcome.conflict_id, remote


def _keep_ours(cid: int, write_back: bool | None = None) -> Conflict:
    with session_scope() as session:
        return resolve(
            session,
            conflict_id=cid,
            strategy=S.USE_LOCAL,
            reason="ward checked",
            actor=ALICE,
            write_back=write_back,
        )


def _state(rid: int, cid: int) -> tuple[SyncedRecord, Conflict]:
    with session_scope() as session:
        return session.get(SyncedRecord, rid), session.get(Conflict, cid)


class FailingEHR(FakeEHR):
    """Answers every write with an error."""

    error: Exception = ServerError("503 Service Unavailable", status=503)

    def write(self, resource: dict, *, remote_version: str | None = None):
        self.writes.append((resource, remote_version))
        raise self.error


def test_resolving_owes_the_write_and_the_job_writes_it_once(world):
    rid, cid, remote = _conflict(world)
    ehr = FakeEHR(current=remote)
    _keep_ours(cid)  # the job that found it was bidirectional: the EHR gets our version
    record, conflict = _state(rid, cid)
    assert conflict.status is ConflictStatus.RESOLVED
    assert conflict.resolution["write_back"]["status"] == "queued"
    assert conflict.write_back_queued_at is not None and record.dirty
    assert ehr.writes == []  # the resolution itself never talks to the EHR

    assert writeback.run(cid, adapter_factory=lambda _c: ehr) == "written"
    record, conflict = _state(rid, cid)
    assert ehr.writes[0][1] == "2"  # If-Match on the version the resolution built on
    assert ehr.current["gender"] == "female" and ehr.version == "3"
    assert record.remote_version == "3" and not record.dirty
    assert record.base_body == record.local_body == record.remote_body
    assert conflict.resolution["write_back"] == {
        "status": "written",
        "version": "3",
        "conflict_id": None,
        "error": None,
    }
    assert conflict.write_back_queued_at is None and ehr.closed == 1

    # A second run of the same job (RQ ran it twice, or the sweep queued it late): no write.
    assert writeback.run(cid, adapter_factory=lambda _c: ehr) == "written"
    assert len(ehr.writes) == 1
    with session_scope() as session:
        entries = session.exec(select(AuditLog).where(AuditLog.action == "conflict.write_back"))
        assert [e.details["status"] for e in entries] == ["written"]


def test_a_write_meeting_412_opens_a_fresh_conflict_and_keeps_the_resolution(world):
    rid, cid, _ = _conflict(world)
    ehr = FakeEHR(current=patient("3", gender="unknown", birthDate="1980-01-01"))
    _keep_ours(cid, write_back=True)
    assert writeback.run(cid, adapter_factory=lambda _c: ehr) == "stale"
    record, conflict = _state(rid, cid)
    assert len(ehr.writes) == 1  # tried once: no loop
    fresh_id = conflict.resolution["write_back"]["conflict_id"]
    assert conflict.status is ConflictStatus.RESOLVED and fresh_id != cid
    with session_scope() as session:
        fresh = session.get(Conflict, fresh_id)
        assert fresh.kind is ConflictKind.STALE_WRITE and fresh.remote_version == "3"
        assert fresh.fields == ["gender"] and fresh.status is ConflictStatus.OPEN
    assert record.local_body["gender"] == "female"  # the resolution is not lost
    assert record.conflict_pending


def test_a_412_over_our_own_earlier_write_counts_as_written(world):
    """The EHR took the write but its answer was lost (a killed worker, a timeout): the
    retry meets 412, and the EHR's copy is what we sent, so there is no conflict."""
    rid, cid, remote = _conflict(world)
    _keep_ours(cid)
    with session_scope() as session:
        ours = dict(session.get(SyncedRecord, rid).local_body)
    ehr = FakeEHR(current={**ours, "meta": {"versionId": "3"}})
    assert writeback.run(cid, adapter_factory=lambda _c: ehr) == "written"
    record, conflict = _state(rid, cid)
    assert record.remote_version == "3" and not record.dirty and not record.conflict_pending
    with session_scope() as session:
        assert session.exec(select(Conflict).where(Conflict.record_id == rid)).all() == [conflict]


def test_a_local_change_made_while_writing_stays_for_the_next_run(world):
    rid, cid, remote = _conflict(world)
    _keep_ours(cid)
    ehr = FakeEHR(current=remote)

    def change_then_adapter(_connection):
        with session_scope() as session:  # someone edits the record while the job runs
            record = session.get(SyncedRecord, rid)
            record.local_body = {**record.local_body, "language": "fr"}
            session.add(record)
        return ehr

    assert writeback.run(cid, adapter_factory=change_then_adapter) == "written"
    record, _ = _state(rid, cid)
    assert record.remote_version == "3" and record.base_body == ehr.current
    assert record.local_body["language"] == "fr" and record.dirty  # not taken as agreed


def test_a_passing_failure_is_retried_then_recorded_and_the_record_stays_dirty(world):
    rid, cid, remote = _conflict(world)
    _keep_ours(cid)
    ehr = FailingEHR(current=remote)
    with pytest.raises(ServerError):  # RQ has retries left: it runs the job again later
        writeback.run(cid, retries_left=2, adapter_factory=lambda _c: ehr)
    record, conflict = _state(rid, cid)
    assert conflict.write_back_queued_at is not None
    assert conflict.resolution["write_back"]["status"] == "queued"

    assert writeback.run(cid, retries_left=0, adapter_factory=lambda _c: ehr) == "failed"
    record, conflict = _state(rid, cid)
    assert conflict.resolution["write_back"]["error"] == "ServerError: HTTP 503"
    assert conflict.write_back_queued_at is None
    assert record.dirty and record.local_body["gender"] == "female"  # the next outbound run


def test_a_permanent_refusal_is_not_retried(world):
    rid, cid, remote = _conflict(world)
    _keep_ours(cid)
    ehr = FailingEHR(current=remote)
    ehr.error = OperationOutcomeError("422 Unprocessable Entity", status=422)
    assert writeback.run(cid, retries_left=3, adapter_factory=lambda _c: ehr) == "failed"
    _, conflict = _state(rid, cid)
    assert "not retried" in conflict.resolution["write_back"]["error"]
    assert len(ehr.writes) == 1


def test_nothing_is_written_over_a_newer_conflict(world):
    rid, cid, remote = _conflict(world)
    _keep_ours(cid)
    with session_scope() as session:  # an inbound run found the EHR's next version first
        record = session.get(SyncedRecord, rid)
        record.conflict_pending = True
        session.add(record)
    ehr = FakeEHR(current=remote)
    assert writeback.run(cid, adapter_factory=lambda _c: ehr) == "superseded"
    assert ehr.writes == []


def test_use_remote_and_write_back_false_owe_nothing(world):
    _, first, _ = _conflict(world, "p1")
    _, second, _ = _conflict(world, "p2")
    with session_scope() as session:
        resolve(session, conflict_id=first, strategy=S.USE_REMOTE, reason="r", actor=ALICE)
    _keep_ours(second, write_back=False)
    with session_scope() as session:
        for cid in (first, second):
            conflict = session.get(Conflict, cid)
            assert conflict.write_back_queued_at is None
            assert "write_back" not in conflict.resolution


def test_a_rolled_back_resolution_queues_nothing(world, redis_client, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    get_settings.cache_clear()
    _, cid, _ = _conflict(world)
    queue = Queue("conflicts.default", connection=redis_client)
    with pytest.raises(RuntimeError), session_scope() as session:
        resolve(session, conflict_id=cid, strategy=S.USE_LOCAL, reason="r", actor=ALICE)
        raise RuntimeError("the request failed after resolving")
    assert queue.count == 0
    _keep_ours(cid)  # committed: exactly one job, named for the conflict
    assert queue.job_ids == [f"conflict-writeback-{cid}"]


def test_a_conflicts_worker_writes_back_to_the_sandbox_and_sweeps_what_was_never_queued(
    connection, ehr, redis_client
):
    """A real `rq worker` on the conflicts queues, the sandbox EHR over HTTP: one write-back
    queued by the commit, one owed but never queued (Redis lost it), found by the sweep."""
    with session_scope() as session:
        records = list(session.exec(select(SyncedRecord)))
    assert records == []  # nothing synced: make two records the sandbox has
    ids = sorted(r.id for r in ehr.state.store.candidates("Patient"))[:2]
    cids, languages = [], []
    for pid in ids:
        current = ehr.state.store.get("Patient", pid).resource()
        version = current["meta"]["versionId"]
        # The session's sandbox keeps what earlier tests wrote: a value it does not hold yet.
        language = next(code for code in ("fr", "it", "nl") if code != current.get("language"))
        languages.append(language)
        with session_scope() as session:
            record = SyncedRecord(
                connection_id=connection.id,
                resource_type="Patient",
                remote_id=pid,
                patient_ref=f"Patient/{pid}",
                base_body=current,
                remote_body=current,
                local_body={**current, "language": language},
                dirty=True,
                remote_version=version,
            )
            session.add(record)
            session.flush()
            conflict = Conflict(
                record_id=record.id,
                connection_id=connection.id,
                resource_type="Patient",
                remote_version=version,
                fields=["language"],
                local_values={"language": language},
            )
            session.add(conflict)
            session.flush()
            cids.append(conflict.id)
    _keep_ours(cids[0], write_back=True)  # queued when it commits
    _keep_ours(cids[1], write_back=True)
    queue = Queue("conflicts.default", connection=redis_client)
    Job.fetch(f"conflict-writeback-{cids[1]}", connection=redis_client).delete()  # Redis lost it
    with session_scope() as session:  # and owed long enough for the sweep to look
        session.get(Conflict, cids[1]).write_back_queued_at = (
            utcnow() - writeback.STRANDED_AFTER * 2
        )
    with session_scope() as session:
        assert writeback.requeue_stranded(session, queue) == 1
        assert writeback.requeue_stranded(session, queue) == 0  # now held by its job
    run_conflicts_worker(os.environ["HOLOVITALS_REDIS_URL"])
    for pid, cid, language in zip(ids, cids, languages, strict=True):
        at_ehr = ehr.state.store.get("Patient", pid).resource()
        with session_scope() as session:
            conflict = session.get(Conflict, cid)
            record = session.get(SyncedRecord, conflict.record_id)
            assert conflict.resolution["write_back"]["status"] == "written"
            assert at_ehr["language"] == language
            assert record.remote_version == at_ehr["meta"]["versionId"] and not record.dirty
