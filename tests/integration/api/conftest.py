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
def api_db(monkeypatch: pytest.MonkeyPatch, sqlite_url: str, redis_client) -> str:
    migrations.upgrade(sqlite_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    get_settings.cache_clear()
    get_engine.cache_clear()
    return sqlite_url


@pytest.fixture
def world(api_db: str) -> Iterator[ApiWorld]:
    tokens = {}
    with session_scope() as session:
        for role in Role:
            tokens[role.value] = make_token(session, make_user(session, role.value, role))
    with TestClient(create_api()) as client:
        yield ApiWorld(client, tokens)
