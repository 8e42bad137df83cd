"""Change notices: a commit that touches conflict or webhook rows tells open dashboards once.

Real SQLite and the machine's Redis (the tests' database): what a dashboard's watcher would
receive on `holovitals:changes:db<N>` is read back from a subscription.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import redis
from sqlmodel import select

from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import Conflict, ConflictStatus, Role, WebhookSubscription

# What writes these rows in the app imports its service package, which follows the tables.
from holovitals_sync.services import changes, conflicts, webhooks  # noqa: F401
from holovitals_sync.services.platform.redis import redis_connection
from tests.conftest import REDIS_TEST_URL
from tests.factories import (
    make_conflict,
    make_connection,
    make_delivery,
    make_subscription,
    make_user,
)


@pytest.fixture
def notices(
    sqlite_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[redis.client.PubSub]:
    """A subscription to the change channel of the app's Redis database."""
    migrations.upgrade(sqlite_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    get_settings.cache_clear()
    get_engine.cache_clear()
    redis_connection.cache_clear()
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(changes.channel_for(redis_client))
    pubsub.get_message(timeout=1)  # the subscription's confirmation
    yield pubsub
    pubsub.close()
    get_engine().dispose()
    redis_connection.cache_clear()


def _received(pubsub: redis.client.PubSub) -> list[list[str]]:
    """The topics of every notice published so far."""
    found = []
    while (message := pubsub.get_message(timeout=0.3)) is not None:
        found.append(orjson.loads(message["data"])["topics"])
    return found


def test_one_notice_per_commit_naming_each_touched_list(notices) -> None:
    with session_scope() as session:
        connection_id = make_connection(session).id
        make_user(session, "ada", Role.ADMIN)
    assert _received(notices) == []  # connections and users are not followed

    with session_scope() as session:
        sub_id = make_subscription(session).id
        make_delivery(session, sub_id)
        conflict_id = make_conflict(session, connection_id, "pt-1")
    assert _received(notices) == [["conflicts", "webhooks"]]  # one commit, one notice

    with session_scope() as session:
        session.get(Conflict, conflict_id).status = ConflictStatus.RESOLVED
    assert _received(notices) == [["conflicts"]]


def test_a_rollback_tells_nobody(notices) -> None:
    with session_scope() as session:
        connection_id = make_connection(session).id
    with pytest.raises(RuntimeError), session_scope() as session:
        make_conflict(session, connection_id, "pt-2")  # flushed, then the request fails
        raise RuntimeError("the request failed after its flush")
    assert _received(notices) == []
    with session_scope() as session:
        assert session.exec(select(Conflict)).all() == []


def test_without_redis_a_commit_still_succeeds(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations.upgrade(sqlite_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    redis_connection.cache_clear()
    with session_scope() as session:
        make_subscription(session)
    with session_scope() as session:
        assert len(session.exec(select(WebhookSubscription)).all()) == 1
    get_engine().dispose()


def test_topics_of_reads_only_well_formed_notices() -> None:
    assert changes.topics_of(b'{"topics": ["conflicts", 3], "at": 1}') == {"conflicts"}
    assert changes.topics_of(b"not json") == set()
    assert changes.topics_of(b'{"job_id": 4}') == set()
