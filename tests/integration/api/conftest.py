"""An API on a migrated database with one user and token per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from holovitals_sync import migrations
from holovitals_sync.api import create_api
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import Role
from tests.conftest import REDIS_TEST_URL
from tests.factories import make_token, make_user


@dataclass
class ApiWorld:
    client: TestClient
    tokens: dict[str, str]  # role name -> bearer token

    def headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}


@pytest.fixture
def api_db(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, redis_client) -> str:
    """SQLite; a test parametrised indirectly with "postgres" gets a new PostgreSQL database."""
    kind = getattr(request, "param", "sqlite")
    url = request.getfixturevalue("postgres_url" if kind == "postgres" else "sqlite_url")
    migrations.upgrade(url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", url)
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    get_settings.cache_clear()
    get_engine.cache_clear()
    return url


@pytest.fixture
def world(api_db: str) -> Iterator[ApiWorld]:
    tokens = {}
    with session_scope() as session:
        for role in Role:
            tokens[role.value] = make_token(session, make_user(session, role.value, role))
    with TestClient(create_api()) as client:
        yield ApiWorld(client, tokens)
