"""Resolution: each strategy, what is recorded, the audit entry, bulk."""

from __future__ import annotations

import pytest
from sqlmodel import select

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
    NotOpen,
    ResolutionError,
    detect_batch,
    resolve,
    resolve_bulk,
)

from .conftest import make_record, patient

S = ResolutionStrategy
ALICE = Actor(ActorKind.USER, "alice")


def _conflict(world, remote_id="p1", **local_fields):
    base = patient(id=remote_id)
    local = patient(id=remote_id, gender="female", active=False, **local_fields)
    rid = make_record(world, base=base, local=local, remote_id=remote_id)
    remote = patient("2", id=remote_id, gender="other", birthDate="1980-01-01")
    with session_scope() as session:
        record = session.get(SyncedRecord, rid)
        (outcome,) = detect_batch(
            session, world.connection_id, world.job_id, [Incoming(record, remote, "2")]
        )
    return rid, outcome.conflict_id, remote


def _resolve(cid, strategy, **kwargs):
    kwargs.setdefault("write_back", False)
    with session_scope() as session:
        resolve(
            session,
            conflict_id=cid,
            strategy=strategy,
            reason="checked with the ward",
            actor=ALICE,
            **kwargs,
        )


def _state(rid, cid):
    with session_scope() as session:
        return session.get(SyncedRecord, rid), session.get(Conflict, cid)


@pytest.mark.parametrize(
    ("strategy", "kwargs", "gender"),
    [
        (S.USE_LOCAL, {}, "female"),
        (S.USE_REMOTE, {}, "other"),
        (S.MERGE, {"choices": {"gender": "remote"}}, "other"),
        (S.MANUAL, {"values": {"gender": "unknown"}}, "unknown"),
    ],
)
def test_strategies_apply_and_record(world, strategy, kwargs, gender):
    rid, cid, remote = _conflict(world)
    _resolve(cid, strategy, **kwargs)
    record, conflict = _state(rid, cid)
    assert record.local_body["gender"] == gender
    assert record.base_body == remote  # the EHR's version is the new agreed base
    assert not record.conflict_pending
    assert record.dirty is (strategy is not S.USE_REMOTE)
    if strategy is S.USE_REMOTE:
        assert record.local_body == remote
    if strategy in (S.MERGE, S.MANUAL):  # one-sided changes of both sides kept
        assert record.local_body["active"] is False
        assert record.local_body["birthDate"] == "1980-01-01"
    assert conflict.status is ConflictStatus.RESOLVED and conflict.strategy is strategy
    assert conflict.resolved_by == "alice" and conflict.resolved_at is not None
    assert conflict.reason == "checked with the ward"
    assert conflict.resolution["before"]["gender"] == "female"
    assert conflict.resolution["after"]["gender"] == gender
    assert conflict.resolution["values"] == {"gender": gender}
    with session_scope() as session:
        (entry,) = session.exec(select(AuditLog).where(AuditLog.action == "conflict.resolve"))
        assert entry.actor == "alice" and entry.target_id == str(cid)
        assert entry.details["strategy"] == strategy.value
        assert entry.details["paths"] == ["gender"]
        assert "female" not in str(entry.details)  # ids and paths, never values


def test_ignore_keeps_local(world):
    rid, cid, _ = _conflict(world)
    _resolve(cid, S.IGNORE)
    record, conflict = _state(rid, cid)
    assert conflict.status is ConflictStatus.IGNORED
    assert record.local_body["gender"] == "female"
    assert record.conflict_pending  # not written over the EHR's change unasked


def test_reason_required_and_bad_input_changes_nothing(world):
    rid, cid, _ = _conflict(world)
    with pytest.raises(ResolutionError):
        _resolve_no_reason(cid)
    with pytest.raises(ResolutionError):
        _resolve(cid, S.MANUAL, values={"gender": 12})
    record, conflict = _state(rid, cid)
    assert conflict.status is ConflictStatus.OPEN and record.conflict_pending
    _resolve(cid, S.USE_LOCAL)
    with pytest.raises(NotOpen):
        _resolve(cid, S.USE_REMOTE)


def _resolve_no_reason(cid):
    with session_scope() as session:
        resolve(session, conflict_id=cid, strategy=S.USE_LOCAL, reason="  ", actor=ALICE)


def test_bulk_resolves_low_severity_only(world):
    low = []
    for n in range(3):
        base = {"resourceType": "Basic", "id": f"b{n}", "code": {"text": "a"}}
        rid = make_record(
            world,
            base=base,
            local={**base, "code": {"text": "l"}},
            remote_id=f"b{n}",
            resource_type="Basic",
        )
        with session_scope() as session:
            record = session.get(SyncedRecord, rid)
            (out,) = detect_batch(
                session,
                world.connection_id,
                world.job_id,
                [Incoming(record, {**base, "code": {"text": "r"}}, "2")],
            )
            low.append(out.conflict_id)
    _, medium, _ = _conflict(world, remote_id="p9")
    with session_scope() as session:
        result = resolve_bulk(
            session,
            conflict_ids=[*low, medium],
            strategy=S.USE_REMOTE,
            reason="lab feed wins",
            actor=ALICE,
            write_back=False,
        )
    assert result.resolved == low
    assert list(result.skipped) == [medium]
    with session_scope() as session:
        assert session.get(Conflict, medium).status is ConflictStatus.OPEN
        assert all(session.get(Conflict, c).status is ConflictStatus.RESOLVED for c in low)
    with session_scope() as session, pytest.raises(ResolutionError):
        resolve_bulk(session, conflict_ids=[medium], strategy=S.MERGE, reason="x", actor=ALICE)


def test_a_resolution_is_announced_to_subscribers(world, monkeypatch, redis_client):
    from holovitals_sync.config import get_settings
    from holovitals_sync.models import WebhookDelivery
    from holovitals_sync.services.webhooks.subscriptions import SubscriptionIn, create
    from tests.conftest import REDIS_TEST_URL

    monkeypatch.setenv("HOLOVITALS_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)  # deliveries are queued
    get_settings.cache_clear()
    with session_scope() as session:
        create(
            session,
            data=SubscriptionIn(
                name="conflicts", url="http://127.0.0.1:9/hook", event_types=["conflict.resolved"]
            ),
            actor=ALICE,
        )
    rid, cid, _ = _conflict(world)
    _resolve(cid, S.USE_REMOTE)
    with session_scope() as session:
        (delivery,) = session.exec(select(WebhookDelivery)).all()
    assert delivery.event_type == "conflict.resolved"
    assert delivery.event_ref["conflict_id"] == cid and delivery.event_ref["record_id"] == rid
