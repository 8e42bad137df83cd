"""Shared fixtures: real SQLite files, a fresh PostgreSQL database, a Redis database."""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator

import pytest
import redis
import sqlalchemy as sa

from holovitals_sync.db import create_db_engine

pytest_plugins = [
    name for name in ["tests.fixtures.sandbox"] if importlib.util.find_spec(name) is not None
]

PG_ADMIN_URL = os.environ.get(
    "HOLOVITALS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get("HOLOVITALS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No test reads the developer's .env or ./data by accident."""
    for key in list(os.environ):
        if key.startswith("HOLOVITALS_") and not key.startswith("HOLOVITALS_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    from holovitals_sync.config import get_settings
    from holovitals_sync.db import get_engine

    get_settings.cache_clear()
    get_engine.cache_clear()
    yield
    get_settings.cache_clear()
    get_engine.cache_clear()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A brand-new PostgreSQL database, dropped afterwards."""
    name = f"hv_test_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(fixture)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """The machine's Redis, on a database of the tests' own, flushed around each test."""
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: they are the slowest, and cheaper failures should show first."""
    # test_up.py and test_traces_ui.py last of all: their own `up` (and `reflex export`)
    # rebuild the shared .web directory, which the session's demo app (the other browser
    # tests) is serving from. Just before them, the tests that kill the demo app's Redis or
    # stop it under load (they leave it running again).
    last = {
        "test_up_redis_restart.py": 1,
        "test_up_stop_under_load.py": 1,
        "test_up.py": 2,
        "test_traces_ui.py": 2,
    }
    items.sort(key=lambda item: ("/e2e/" in str(item.path), last.get(item.path.name, 0)))
