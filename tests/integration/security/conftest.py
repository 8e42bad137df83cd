"""The API served for real on loopback (uvicorn in a thread), for tests that need parallel
callers: the in-process test client runs one request at a time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from holovitals_sync import migrations
from holovitals_sync.api import create_api
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine
from tests.conftest import REDIS_TEST_URL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served_api(monkeypatch: pytest.MonkeyPatch, sqlite_url: str, redis_client) -> Iterator[str]:
    """The API on a SQLite file and the test Redis database; yields its /api URL."""
    migrations.upgrade(sqlite_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    get_settings.cache_clear()
    get_engine.cache_clear()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_api(), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(10)
