"""Default policies, and automatic resolution by a real RQ worker on the conflicts queue."""

from __future__ import annotations

from rq import Queue

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    ActorKind,
    AuditLog,
    Conflict,
    ConflictStatus,
    ResolutionStrategy,
    SyncedRecord,
)
from holovitals_sync.services.audit import Actor
from holovitals_sync.services.conflicts import (
    Incoming,
    detect_batch,
    list_policies,
    schedule_automatic,
    set_policy,
    strategy_for,
)
from tests.conftest import REDIS_TEST_URL

from .conftest import make_record, run_conflicts_worker

S = ResolutionStrategy
ADMIN = Actor(ActorKind.USER, "admin")


def _lookup(world, rtype):
    with session_scope() as session:
        return strategy_for(session, connection_id=world.connection_id, resource_type=rtype)


def test_built_in_global_and_connection_precedence(world):
    assert _lookup(world, "Observation").strategy is S.USE_REMOTE
    assert _lookup(world, "MedicationRequest").strategy is S.MANUAL
    assert _lookup(world, "Basic").strategy is S.MANUAL
    with session_scope() as session:
        set_policy(
            session, connection_id=None, resource_type="Basic", strategy=S.USE_LOCAL, actor=ADMIN
        )
    assert (_lookup(world, "Basic").strategy, _lookup(world, "Basic").source) == (
        S.USE_LOCAL,
        "global",
    )
    with session_scope() as session:
        set_policy(
            session,
            connection_id=world.connection_id,
            resource_type="Basic",
            strategy=S.USE_REMOTE,
            actor=ADMIN,
        )
        set_policy(
            session,
            connection_id=world.connection_id,
            resource_type="Basic",
            strategy=S.IGNORE,
            actor=ADMIN,
        )  # replaces, no second row
    assert _lookup(world, "Basic").strategy is S.IGNORE
    with session_scope() as session:
        set_policy(
            session,
            connection_id=world.connection_id,
            resource_type="Basic",
            strategy=None,
            actor=ADMIN,
        )
        types = {p.resource_type for p in list_policies(session)}
        entries = session.query(AuditLog).filter(AuditLog.action == "conflict_policy.set")
        assert entries.count() == 4
    assert _lookup(world, "Basic").source == "global"
    assert {"Observation", "MedicationRequest", "AllergyIntolerance", "Basic"} <= types


def _observation_conflict(world, remote_id, rtype="Observation"):
    base = {
        "resourceType": rtype,
        "id": remote_id,
        "status": "final",
        "category": [{"coding": [{"code": "laboratory"}]}],
    }
    rid = make_record(
        world,
        base=base,
        local={**base, "status": "amended"},
        remote_id=remote_id,
        resource_type=rtype,
    )
    with session_scope() as session:
        record = session.get(SyncedRecord, rid)
        (out,) = detect_batch(
            session,
            world.connection_id,
            world.job_id,
            [Incoming(record, {**base, "status": "corrected"}, "2")],
        )
    return out.conflict_id


def test_worker_resolves_automatic_conflicts_and_leaves_manual_ones(world, redis_client):
    auto = _observation_conflict(world, "o1")
    manual = _observation_conflict(world, "m1", rtype="MedicationRequest")
    queue = Queue("conflicts.default", connection=redis_client)
    with session_scope() as session:
        assert schedule_automatic(session, [auto, manual], queue=queue) == [auto]
        schedule_automatic(session, [auto], queue=queue)  # same RQ job id: no second job
    assert queue.count == 1
    run_conflicts_worker(REDIS_TEST_URL)
    with session_scope() as session:
        done = session.get(Conflict, auto)
        assert done.status is ConflictStatus.RESOLVED and done.strategy is S.USE_REMOTE
        assert done.resolved_by == "conflict-policy"
        assert session.get(Conflict, manual).status is ConflictStatus.OPEN
        record = session.get(SyncedRecord, done.record_id)
        assert record.local_body["status"] == "corrected"
