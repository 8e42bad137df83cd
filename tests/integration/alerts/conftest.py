"""Alert tests: a migrated database (SQLite and PostgreSQL), the tests' Redis database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from sqlmodel import Session, select

from holovitals_sync import migrations
from holovitals_sync.config import Settings, get_settings, load_settings
from holovitals_sync.db import get_engine
from holovitals_sync.models import Alert, AlertStatus
from holovitals_sync.services import alerts
from holovitals_sync.services.platform.redis import redis_connection
from tests.conftest import REDIS_TEST_URL


@pytest.fixture
def alert_db(
    database_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    migrations.upgrade(database_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    get_settings.cache_clear()
    get_engine.cache_clear()
    redis_connection.cache_clear()
    yield database_url
    get_engine().dispose()
    redis_connection.cache_clear()


@dataclass
class Evaluator:
    """Runs `evaluate` with given thresholds, each round in a fresh session (like a worker)."""

    redis: redis.Redis
    settings: Settings

    def __call__(self) -> list[int]:
        with Session(get_engine()) as session:
            return [a.id for a in alerts.evaluate(session, self.redis, self.settings)]

    def rows(self, **where: object) -> list[Alert]:
        with Session(get_engine()) as session:
            query = select(Alert).order_by(Alert.id)
            for name, value in where.items():
                query = query.where(getattr(Alert, name) == value)
            return list(session.exec(query))

    def active(self) -> list[Alert]:
        return [a for a in self.rows() if a.status != AlertStatus.CLOSED]


@pytest.fixture
def evaluator(alert_db: str, redis_client: redis.Redis) -> Evaluator:
    # Thresholds low enough for a handful of rows; queue depth high unless a test lowers it
    # (webhook deliveries queued by `alert.raised` must not trip it by accident).
    settings = load_settings(
        alert_queue_depth=1000,
        alert_failure_streak=3,
        alert_slow_factor=3.0,
        alert_slow_floor_seconds=1,
        alert_conflict_backlog=2,
    )
    return Evaluator(redis_client, settings)
