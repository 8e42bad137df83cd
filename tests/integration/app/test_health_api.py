"""`GET /api/health` against the real database, Redis and RQ worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from holovitals_sync import migrations
from holovitals_sync.api import create_api
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine
from tests.conftest import REDIS_TEST_URL

ROOT = Path(__file__).parents[3]


def _configure(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str) -> None:
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", redis_url)
    get_settings.cache_clear()
    get_engine.cache_clear()


def _get_health() -> httpx.Response:
    with TestClient(create_api()) as client:
        return client.get("/api/health")


@pytest.fixture
def sync_worker(redis_client, tmp_path) -> Iterator[subprocess.Popen]:
    """One real `rq worker-pool` process for the sync family."""
    env = {
        **os.environ,
        "HOLOVITALS_REDIS_URL": REDIS_TEST_URL,
        "HOLOVITALS_DATA_DIR": str(tmp_path),
    }
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "rq"), "worker-pool", "-c", "workers.settings",
         "-n", "1", "-w", "workers.worker.HoloVitalsWorker",
         "sync.high", "sync.default", "sync.low"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    yield proc
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):  # then killed below, workers too
        proc.wait(30)
    # The pool's own group, workers included: none may outlive the test. A pool that once
    # missed the 30 s left its workers taking every later test's sync jobs in a CI run.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_healthy_reports_live_workers(monkeypatch, database_url, redis_client, sync_worker):
    migrations.upgrade(database_url)
    _configure(monkeypatch, database_url, REDIS_TEST_URL)
    deadline = time.monotonic() + 30
    body: dict = {}
    while time.monotonic() < deadline:
        response = _get_health()
        body = response.json()
        if body["queues"]["sync"]["workers"] == 1:
            break
        time.sleep(0.5)
    assert response.status_code == 200
    assert body["database"] == {"ok": True, "error": None}
    assert body["redis"] == {"ok": True, "error": None}
    assert body["queues"]["sync"]["workers"] == 1
    assert set(body["queues"]) == {"sync", "webhooks", "conflicts", "transformations"}
    # The other families have no workers here, so the system is up but degraded.
    assert body["status"] == "degraded"


def test_queued_jobs_are_counted(monkeypatch, sqlite_url, redis_client):
    from rq import Queue

    _configure(monkeypatch, sqlite_url, REDIS_TEST_URL)
    Queue("webhooks.low", connection=redis_client).enqueue("builtins.print", "x")
    body = (_get_health()).json()
    assert body["queues"]["webhooks"]["queued"] == 1
    assert body["queues"]["sync"]["queued"] == 0


def test_redis_unreachable_gives_503_naming_redis(monkeypatch, sqlite_url):
    _configure(monkeypatch, sqlite_url, "redis://127.0.0.1:1/0")
    response = _get_health()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is False
    assert "Redis unreachable" in body["redis"]["error"]
    assert "Traceback" not in response.text


def test_database_unreachable_gives_503_naming_database(monkeypatch, redis_client):
    _configure(monkeypatch, "postgresql+psycopg://nobody@127.0.0.1:1/none", REDIS_TEST_URL)
    response = _get_health()
    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] is False
    assert "database unreachable" in body["database"]["error"]
    assert body["redis"]["ok"] is True
    assert "Traceback" not in response.text


def test_unknown_route_has_error_shape():
    with TestClient(create_api()) as client:
        response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
