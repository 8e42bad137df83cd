"""The Webhooks tab's row actions: enable/disable, delete, redeliver (queued on real Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rq import Queue
from sqlmodel import select

from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import AuditLog, DeliveryStatus, Role, WebhookDelivery
from holovitals_sync.models import WebhookSubscription as Sub
from holovitals_sync.services.platform.redis import redis_connection
from holovitals_sync.ui.state import webhooks as ui
from tests.conftest import REDIS_TEST_URL
from tests.factories import make_delivery, make_subscription, make_user


@pytest.fixture
def operator(database_url: str, redis_client, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    migrations.upgrade(database_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    get_settings.cache_clear()
    get_engine.cache_clear()
    redis_connection.cache_clear()
    with session_scope() as session:
        principal = make_user(session, "op", Role.OPERATOR)
    yield principal
    get_engine().dispose()
    redis_connection.cache_clear()


def test_disable_then_enable_clears_the_failure_streak(operator) -> None:
    with session_scope() as session:
        sub_id = make_subscription(session, active=False, failure_streak=4).id
    assert ui._set_active(operator, sub_id, True) is None
    with session_scope() as session:
        sub = session.get(Sub, sub_id)
        assert (sub.active, sub.failure_streak) == (True, 0)
    assert ui._set_active(operator, sub_id, False) is None
    with session_scope() as session:
        assert session.get(Sub, sub_id).active is False
    assert ui._set_active(operator, 10_000, True) == "that subscription no longer exists"


def test_delete_removes_the_subscription_and_its_log(operator) -> None:
    with session_scope() as session:
        sub_id = make_subscription(session).id
        make_delivery(session, sub_id)
    assert ui._delete(operator, sub_id) is None
    with session_scope() as session:
        assert session.get(Sub, sub_id) is None
        assert session.exec(select(WebhookDelivery)).all() == []
        actions = session.exec(select(AuditLog.action)).all()
    assert "webhook_subscription.delete" in actions
    assert ui._delete(operator, sub_id) == "that subscription no longer exists"


def test_redeliver_queues_the_delivery_again(operator, redis_client) -> None:
    with session_scope() as session:
        sub_id = make_subscription(session).id
        delivery = make_delivery(session, sub_id, response_status=500)
        delivery.status = DeliveryStatus.FAILED
        session.add(delivery)
        session.flush()
        delivery_id = delivery.id
    assert ui._redeliver(operator, delivery_id) is None
    with session_scope() as session:
        assert session.get(WebhookDelivery, delivery_id).status is DeliveryStatus.PENDING
    queued = sum(
        Queue(f"webhooks.{p}", connection=redis_client).count for p in ("high", "default", "low")
    )
    assert queued == 1
    assert ui._redeliver(operator, 10_000) == "that delivery no longer exists"
