"""Point this test process, and the worker processes it starts, at one database and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine
from holovitals_sync.services.platform.redis import redis_connection


def _forget_cached_settings() -> None:
    get_settings.cache_clear()
    get_engine.cache_clear()
    redis_connection.cache_clear()


@contextmanager
def holovitals_env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, **settings: object
) -> Iterator[str]:
    """Migrate `database_url`, then set HOLOVITALS_DATABASE_URL, HOLOVITALS_REDIS_URL and
    HOLOVITALS_<NAME> for each keyword (workers inherit the environment); the cached
    settings, engine and Redis connection are dropped on the way in and out."""
    migrations.upgrade(database_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", redis_url)
    for name, value in settings.items():
        monkeypatch.setenv(f"HOLOVITALS_{name.upper()}", str(value))
    _forget_cached_settings()
    try:
        yield database_url
    finally:
        get_engine().dispose()
        _forget_cached_settings()
