"""HOLOVITALS_ALERT_* settings are validated like every setting; overrides are checked."""

from __future__ import annotations

import pytest

from holovitals_sync.config import ConfigError, load_settings
from holovitals_sync.db import session_scope
from holovitals_sync.models import AlertKind
from holovitals_sync.services import alerts
from tests.factories import make_connection


def test_defaults():
    settings = load_settings()
    assert (
        settings.alert_queue_depth,
        settings.alert_failure_streak,
        settings.alert_slow_factor,
        settings.alert_slow_floor_seconds,
        settings.alert_conflict_backlog,
    ) == (1000, 3, 3.0, 300, 50)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("HOLOVITALS_ALERT_QUEUE_DEPTH", "many", "ALERT_QUEUE_DEPTH: expected a whole number"),
        ("HOLOVITALS_ALERT_FAILURE_STREAK", "0", "from 1 to 100"),
        ("HOLOVITALS_ALERT_SLOW_FACTOR", "1", "ALERT_SLOW_FACTOR: expected a number above 1"),
        ("HOLOVITALS_ALERT_SLOW_FLOOR_SECONDS", "-5", "ALERT_SLOW_FLOOR_SECONDS"),
        ("HOLOVITALS_ALERT_CONFLICT_BACKLOG", "true", "ALERT_CONFLICT_BACKLOG: expected a whole"),
    ],
)
def test_bad_values_stop_start_up_with_one_line(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"kind": AlertKind.SUBSCRIPTION_DISABLED, "value": 1, "queue": "sync"}, "no threshold"),
        ({"kind": AlertKind.QUEUE_DEPTH, "value": 5, "queue": "nope"}, "queue family"),
        ({"kind": AlertKind.QUEUE_DEPTH, "value": 5}, "either a connection or a queue"),
        ({"kind": AlertKind.JOB_SLOW, "value": 1, "connection": True}, "from 1.0001"),
        ({"kind": AlertKind.JOB_FAILURES, "value": 500, "connection": True}, "to 100"),
    ],
)
def test_threshold_overrides_are_checked(alert_db, kwargs, problem):
    with session_scope() as session:
        if kwargs.pop("connection", False):
            kwargs["connection_id"] = make_connection(session).id
        with pytest.raises(alerts.InvalidThreshold, match=problem):
            alerts.set_threshold(session, **kwargs)
