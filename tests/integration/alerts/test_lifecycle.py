"""Acknowledging, the `alert.raised` webhook event and the pub/sub messages."""

from __future__ import annotations

import orjson
import pytest
from rq import Queue
from sqlmodel import Session, select

from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import (
    AlertKind,
    AlertStatus,
    AuditLog,
    WebhookDelivery,
    WebhookSubscription,
)
from holovitals_sync.services import alerts, audit
from tests.factories import make_connection, make_subscription
from tests.waiting import wait_for

OPERATOR = audit.Actor(audit.ActorKind.USER, "olga")


def _disabled_subscription(**fields) -> int:
    with session_scope() as session:
        return make_subscription(session, active=False, failure_streak=3, **fields).id


def _set_active(sid: int, active: bool) -> None:
    with session_scope() as session:
        session.get(WebhookSubscription, sid).active = active


def test_acknowledge_keeps_one_alert_until_it_clears(evaluator):
    sid = _disabled_subscription()
    evaluator()
    (alert,) = evaluator.rows()
    with Session(get_engine()) as session:
        assert alerts.count_open(session) == 1
        acked = alerts.acknowledge(session, alert_id=alert.id, actor=OPERATOR)
        assert acked.status == AlertStatus.ACKNOWLEDGED and acked.acknowledged_by == "olga"
        assert alerts.count_open(session) == 0
        # Twice changes nothing (and is not audited twice).
        alerts.acknowledge(session, alert_id=alert.id, actor=OPERATOR)
        entries = session.exec(select(AuditLog).where(AuditLog.action == "alert.acknowledge")).all()
        assert [(e.actor, e.target_id) for e in entries] == [("olga", str(alert.id))]
    evaluator()
    evaluator()
    (still,) = evaluator.rows()  # no second row while the condition holds
    assert still.status == AlertStatus.ACKNOWLEDGED and still.occurrences == 3
    _set_active(sid, True)
    evaluator()
    (closed,) = evaluator.rows()
    assert closed.status == AlertStatus.CLOSED
    with Session(get_engine()) as session, pytest.raises(alerts.AlertClosed):
        alerts.acknowledge(session, alert_id=alert.id, actor=OPERATOR)
    with Session(get_engine()) as session, pytest.raises(alerts.AlertNotFound):
        alerts.acknowledge(session, alert_id=alert.id + 100, actor=OPERATOR)


def test_list_alerts_pages_and_filters(evaluator):
    sids = [_disabled_subscription() for _ in range(5)]
    evaluator()
    _set_active(sids[0], True)
    evaluator()
    with Session(get_engine()) as session:
        newest_first = [a.id for a in alerts.list_alerts(session)]
        assert len(newest_first) == 5 and newest_first == sorted(newest_first, reverse=True)
        page = alerts.list_alerts(session, offset=1, limit=2)
        assert [a.id for a in page] == newest_first[1:3]
        closed = alerts.list_alerts(session, status=AlertStatus.CLOSED)
        assert [a.subject for a in closed] == [f"subscription:{sids[0]}"]
        assert len(alerts.list_alerts(session, status=AlertStatus.OPEN)) == 4
        assert alerts.count_open(session) == 4


def test_raising_emits_one_webhook_event(evaluator):
    """Subscribers of `alert.raised` get one delivery per alert, queued after the commit."""
    with session_scope() as session:
        cid = make_connection(session).id
        watcher = make_subscription(session, event_types=["alert.raised"]).id
        make_subscription(session, event_types=["patient.updated"])  # not interested
    sid = _disabled_subscription(filter_connection_id=cid)
    for _ in range(3):
        evaluator()
    (alert,) = evaluator.rows(kind=AlertKind.SUBSCRIPTION_DISABLED)
    with Session(get_engine()) as session:
        (delivery,) = session.exec(
            select(WebhookDelivery).where(WebhookDelivery.event_type == "alert.raised")
        ).all()
    assert delivery.subscription_id == watcher
    assert delivery.event_ref == {
        "alert_id": alert.id,
        "alert_kind": "subscription_disabled",
        "subscription_id": sid,
        "connection_id": cid,
    }
    queued = Queue("webhooks.default", connection=evaluator.redis).jobs
    assert [job.args[0] for job in queued] == [delivery.id]


def _listen(evaluator):
    pubsub = evaluator.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(alerts.channel_for(evaluator.redis))
    wait_for(lambda: pubsub.get_message(timeout=0.1) is None, timeout=5)
    return pubsub


def _next(pubsub) -> dict:
    message = wait_for(lambda: pubsub.get_message(timeout=0.2), timeout=10)
    return orjson.loads(message["data"])


def test_pubsub_messages(evaluator):
    assert alerts.channel_for(evaluator.redis).endswith(
        f":db{evaluator.redis.connection_pool.connection_kwargs.get('db', 0)}"
    )
    pubsub = _listen(evaluator)
    sid = _disabled_subscription()
    evaluator()
    raised = _next(pubsub)
    (alert,) = evaluator.rows()
    assert raised | {"at": 0} == {
        "event": "raised",
        "alert_id": alert.id,
        "kind": "subscription_disabled",
        "severity": "high",
        "status": "open",
        "subject": f"subscription:{sid}",
        "connection_id": None,
        "queue": None,
        "at": 0,
    }
    evaluator()  # seen again: no message
    with Session(get_engine()) as session:
        alerts.acknowledge(session, alert_id=alert.id, actor=OPERATOR, redis=evaluator.redis)
    assert (_next(pubsub)["event"], _next_or_none(pubsub)) == ("acknowledged", None)
    _set_active(sid, True)
    evaluator()
    closed = _next(pubsub)
    assert (closed["event"], closed["status"], closed["alert_id"]) == ("closed", "closed", alert.id)
    pubsub.close()


def _next_or_none(pubsub) -> dict | None:
    message = pubsub.get_message(timeout=0.3)
    return orjson.loads(message["data"]) if message else None


def test_a_failing_check_leaves_its_alerts_alone(evaluator, monkeypatch):
    """A check that errors (e.g. Redis down for queue depth) neither raises nor closes."""
    evaluator.settings = evaluator.settings.model_copy(update={"alert_queue_depth": 1})
    for _ in range(2):
        Queue("sync.default", connection=evaluator.redis).enqueue("builtins.len", "x")
    _disabled_subscription()
    evaluator()
    assert len(evaluator.active()) == 2

    def broken(_ctx):
        raise ConnectionError("redis down")

    from holovitals_sync.services.alerts import checks

    monkeypatch.setitem(checks.CHECKS, AlertKind.QUEUE_DEPTH, broken)
    Queue("sync.default", connection=evaluator.redis).empty()
    evaluator()
    assert {a.kind for a in evaluator.active()} == {
        AlertKind.QUEUE_DEPTH,
        AlertKind.SUBSCRIPTION_DISABLED,
    }
