"""The silence alert: a feed that talked and then says nothing for longer than its threshold,
during the day, raises one alert; the next message closes it; at night nothing is raised."""

from __future__ import annotations

import time

import pytest
from sqlmodel import select

from holovitals_sync.config import load_settings
from holovitals_sync.db import session_scope
from holovitals_sync.models import Alert, AlertKind, AlertStatus
from holovitals_sync.services.alerts import evaluate
from holovitals_sync.services.alerts.thresholds import set_threshold
from holovitals_sync.services.hl7.stats import last_message_at
from tests.waiting import wait_for

from .conftest import adt, send

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
SILENCE_MINUTES = 0.05  # 3 s: a per-connection override, as the Alerts page sets one


def _evaluate(redis_client, day_hours: str = "00-24") -> list[Alert]:
    settings = load_settings(alert_feed_day_hours=day_hours, alert_queue_depth=10_000)
    with session_scope() as session:
        evaluate(session, redis_client, settings)
    with session_scope() as session:
        return list(session.exec(select(Alert).where(Alert.kind == AlertKind.FEED_SILENT)))


def test_a_feed_that_falls_silent_by_day_raises_one_alert(feed_connection, listener, redis_client):
    with session_scope() as session:
        set_threshold(
            session,
            kind=AlertKind.FEED_SILENT,
            value=SILENCE_MINUTES,
            connection_id=feed_connection,
        )
        session.commit()
    assert _evaluate(redis_client) == []  # a feed that never talked is not missed
    assert send(listener, adt("A08", "SIL-1")).code == "AA"
    wait_for(lambda: last_message_at(redis_client, feed_connection), timeout=10)
    assert _evaluate(redis_client) == []  # it just talked

    time.sleep(SILENCE_MINUTES * 60 + 0.5)
    assert _evaluate(redis_client, day_hours="00-00") == []  # at night: no alert
    [alert] = _evaluate(redis_client)
    assert (alert.status, alert.connection_id, alert.subject) == (
        AlertStatus.OPEN,
        feed_connection,
        f"connection:{feed_connection}:feed",
    )
    assert "silent" in alert.message
    [again] = _evaluate(redis_client)  # still silent: the same alert, seen twice
    assert again.id == alert.id and again.occurrences == 2

    before = last_message_at(redis_client, feed_connection)
    assert send(listener, adt("A08", "SIL-2")).code == "AA"
    wait_for(lambda: last_message_at(redis_client, feed_connection) != before, timeout=10)
    [closed] = _evaluate(redis_client)
    assert closed.status == AlertStatus.CLOSED
