"""The dashboard's queue figures, read from RQ's registries on the machine's real Redis in
one or two round trips: what is waiting, scheduled, running, done and failed per family,
and which workers are alive, never counting what has expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from rq.utils import current_timestamp, utcformat
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from holovitals_sync.config import get_settings
from holovitals_sync.services.health import _queue_health
from holovitals_sync.services.orchestration.statistics import queue_stats
from tests.conftest import REDIS_TEST_URL


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, redis_client):
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_registry_counts_per_family_leave_out_what_expired(settings, redis_client):
    sync, hooks = (
        Queue("sync.default", connection=redis_client),
        Queue("webhooks.high", connection=redis_client),
    )
    for _ in range(3):
        sync.enqueue("builtins.print", "waiting")
    hooks.enqueue_in(timedelta(hours=1), "builtins.print", "later")
    now = current_timestamp()
    # Running: one current, one whose execution expired an hour ago (abandoned).
    redis_client.zadd(sync.started_job_registry.key, {"run-1:x": now + 600})
    redis_client.zadd(sync.started_job_registry.key, {"gone-1:x": now - 3600})
    redis_client.zadd(hooks.finished_job_registry.key, {"done-1": now + 500, "done-2": "+inf"})
    redis_client.zadd(hooks.failed_job_registry.key, {"bad-1": now + 500, "old-1": now - 1})

    stats = queue_stats(redis_client)
    assert set(stats) == {"sync", "webhooks", "conflicts", "transformations"}
    assert stats["sync"] == {
        "waiting": 3,
        "scheduled": 0,
        "running": 1,
        "completed": 0,
        "failed": 0,
    }
    assert stats["webhooks"] == {
        "waiting": 0,
        "scheduled": 1,
        "running": 0,
        "completed": 2,
        "failed": 1,
    }
    # A read, not maintenance: the abandoned entry is left for the workers' cleanup.
    assert redis_client.zscore(sync.started_job_registry.key, "gone-1:x") is not None


def test_workers_count_once_per_family_and_only_while_their_heartbeat_is_fresh(
    settings, redis_client
):
    beat = utcformat(datetime.now(UTC))
    stale = utcformat(datetime.now(UTC) - timedelta(minutes=5))
    workers = {"rq:worker:a": beat, "rq:worker:b": beat, "rq:worker:c": stale}
    for key, when in workers.items():
        redis_client.hset(key, "last_heartbeat", when)
    # a listens on two sync queues (counted once), b on webhooks, c (stale) on sync.
    for queue, keys in {
        "sync.high": ["rq:worker:a", "rq:worker:c"],
        "sync.low": ["rq:worker:a"],
        "webhooks.default": ["rq:worker:b"],
    }.items():
        redis_client.sadd(WORKERS_BY_QUEUE_KEY % queue, *keys)
    Queue("conflicts.low", connection=redis_client).enqueue("builtins.print", "x")

    report = _queue_health(redis_client, settings)
    assert {family: (part.workers, part.queued) for family, part in report.items()} == {
        "sync": (1, 0),
        "webhooks": (1, 0),
        "conflicts": (0, 1),
        "transformations": (0, 0),
    }
