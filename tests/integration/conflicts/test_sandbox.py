"""End to end with the sandbox EHR: a bidirectional sync meets edits on both sides.

Five patients are edited locally and at the sandbox (the same element, birthDate, plus a
different element on each side). One bidirectional sync through the orchestration engine
(outbound refused with 412, inbound brings the new versions) and detection give one
conflict per patient; each is resolved with a different strategy, a conflicts worker writes
back what must go to the EHR, and each is checked locally and at the sandbox.
"""

from __future__ import annotations

import copy
import random

from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    AuditLog,
    Conflict,
    ConflictKind,
    ConflictStatus,
    Direction,
    JobType,
    ResolutionStrategy,
    Severity,
    SyncedRecord,
    WebhookDelivery,
)
from holovitals_sync.services.audit import Actor
from holovitals_sync.services.conflicts import Action, detect_stored, resolve
from tests.factories import make_subscription
from tests.integration.sync.conftest import start, wait_status
from tests.waiting import wait_for

S = ResolutionStrategy
NURSE = Actor.system("nurse-on-duty")
STRATEGIES = [S.USE_LOCAL, S.USE_REMOTE, S.MERGE, S.MANUAL, S.IGNORE]


class Dates:
    """Fresh values per test: the session's sandbox keeps what earlier tests wrote to it."""

    used: set[int] = set()  # years of earlier tests: a repeat could make an edit a no-op

    def __init__(self) -> None:
        years = random.sample(sorted(set(range(1900, 2000)) - Dates.used), 3)
        Dates.used.update(years)
        self.local, self.remote, self.manual = (f"{y}-0{n}-1{n}" for n, y in enumerate(years, 1))

    def cases(self) -> list[tuple[ResolutionStrategy, dict, str]]:
        return [
            (S.USE_LOCAL, {}, self.local),
            (S.USE_REMOTE, {}, self.remote),
            (S.MERGE, {"choices": {"birthDate": "local"}}, self.local),
            (S.MANUAL, {"values": {"birthDate": self.manual}}, self.manual),
            (S.IGNORE, {}, self.local),
        ]


def _edit_both_sides(ehr, connection_id: int, dates: Dates) -> list[str]:
    with session_scope() as session:
        rows = list(
            session.exec(
                select(SyncedRecord)
                .where(
                    SyncedRecord.connection_id == connection_id,
                    SyncedRecord.resource_type == "Patient",
                )
                .order_by(SyncedRecord.remote_id)
            )
        )[: len(STRATEGIES)]
        for row in rows:
            row.local_body = {**row.local_copy, "birthDate": dates.local, "active": False}
            row.dirty = True
            session.add(row)
            remote = copy.deepcopy(ehr.state.store.get("Patient", row.remote_id).resource())
            remote.update(birthDate=dates.remote, language="de")
            ehr.state.store.update(remote)
        return [row.remote_id for row in rows]


def _sandbox(ehr, pid: str) -> dict:
    return ehr.state.store.get("Patient", pid).resource()


def test_bidirectional_sync_conflicts_resolved_with_each_strategy(connection, ehr, workers):
    workers.start(1)
    assert wait_status(start(connection.id), "completed").created > 0
    workers.stop_all()  # no worker busy with anything while both sides are edited
    dates = Dates()
    pids = _edit_both_sides(ehr, connection.id, dates)
    with session_scope() as session:  # someone listening for what the sync finds
        sub_id = make_subscription(session, event_types=["conflict.detected", "sync.completed"]).id
    workers.start(1)
    versions = {pid: _sandbox(ehr, pid)["meta"]["versionId"] for pid in pids}
    job = wait_status(
        start(connection.id, JobType.INCREMENTAL, direction=Direction.BIDIRECTIONAL),
        "completed",
        "failed",
    )
    assert job.status.value == "completed", job.last_error
    assert job.conflicts == len(pids)  # the run itself detected them after its batches
    with session_scope() as session:
        sent = session.exec(
            select(WebhookDelivery.event_type).where(WebhookDelivery.subscription_id == sub_id)
        ).all()
    assert sorted(sent) == sorted(["conflict.detected"] * len(pids) + ["sync.completed"])
    with session_scope() as session:
        outcomes = detect_stored(session, connection_id=connection.id, job_id=job.id)
    assert [o.action for o in outcomes] == [Action.CONFLICT] * len(pids)
    with session_scope() as session:
        conflicts = {
            session.get(SyncedRecord, c.record_id).remote_id: c
            for c in session.exec(select(Conflict).where(Conflict.connection_id == connection.id))
        }
    assert sorted(conflicts) == sorted(pids)  # one per edited patient
    for conflict in conflicts.values():
        assert conflict.kind is ConflictKind.STALE_WRITE  # the outbound write met 412 first
        assert conflict.fields == ["birthDate"] and conflict.severity is Severity.MEDIUM
        assert (conflict.local_values, conflict.remote_values) == (
            {"birthDate": dates.local},
            {"birthDate": dates.remote},
        )

    for pid, (strategy, kwargs, _) in zip(pids, dates.cases(), strict=True):
        with session_scope() as session:
            resolve(
                session,
                conflict_id=conflicts[pid].id,
                strategy=strategy,
                reason=f"checked chart ({strategy.value})",
                actor=NURSE,
                **kwargs,
            )
    # The write-backs were queued as each resolution committed; a conflicts worker does them.
    workers.start(1, queues=["conflicts.high", "conflicts.default", "conflicts.low"])
    wait_for(_nothing_owed, timeout=60)
    for pid, (strategy, _, expected) in zip(pids, dates.cases(), strict=True):
        _check(ehr, pid, strategy, expected, versions[pid], dates.remote)

    with session_scope() as session:
        assert detect_stored(session, connection_id=connection.id)[0].action is Action.IGNORED
        entries = session.exec(select(AuditLog).where(AuditLog.action == "conflict.resolve"))
        assert sorted(e.details["strategy"] for e in entries) == sorted(s.value for s in STRATEGIES)


def _nothing_owed() -> bool:
    with session_scope() as session:
        return not session.exec(
            select(Conflict.id).where(Conflict.write_back_queued_at.is_not(None))
        ).all()


def _check(
    ehr, pid: str, strategy: ResolutionStrategy, expected: str, version: str, remote_date: str
) -> None:
    with session_scope() as session:
        record = session.exec(
            select(SyncedRecord).where(
                SyncedRecord.remote_id == pid, SyncedRecord.resource_type == "Patient"
            )
        ).one()
        conflict = session.exec(select(Conflict).where(Conflict.record_id == record.id)).one()
    remote = _sandbox(ehr, pid)
    assert record.local_body["birthDate"] == expected, strategy
    assert conflict.status is (
        ConflictStatus.IGNORED if strategy is S.IGNORE else ConflictStatus.RESOLVED
    )
    if strategy in (S.USE_REMOTE, S.IGNORE):  # nothing goes to the EHR
        assert remote["meta"]["versionId"] == version and remote["birthDate"] == remote_date
        return
    assert conflict.resolution["write_back"]["status"] == "written", strategy
    assert int(remote["meta"]["versionId"]) > int(version)  # the EHR's version moved on
    assert remote["birthDate"] == expected
    assert record.remote_version == remote["meta"]["versionId"] and not record.dirty
    if strategy is not S.USE_LOCAL:  # merge/manual keep both sides' other changes
        assert (remote["active"], remote.get("language")) == (False, "de")
