"""The live hub: one Redis subscription per event loop, fanned out to every registered tab.

Real Redis: the tests' database on the machine's server (channels carry the database's
number, so `PUBSUB NUMSUB` counts only this test's subscribers), and a private redis-server
on a unix socket for the restart, killed and started again on the same socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from holovitals_sync.embedded_redis import EmbeddedRedis
from holovitals_sync.services import alerts, changes
from holovitals_sync.services.orchestration import events
from holovitals_sync.ui import live_hub, shared_reads
from tests.conftest import REDIS_TEST_URL


def _channels(client: redis.Redis) -> list[str]:
    return [events.channel_for(client), alerts.channel_for(client), changes.channel_for(client)]


def _subscribers(client: redis.Redis) -> list[int]:
    return [count for _channel, count in client.pubsub_numsub(*_channels(client))]


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _take_until(
    inbox: live_hub.Inbox, kind: str, timeout: float = 10.0
) -> list[live_hub.Message]:
    """Messages from the inbox up to and including the first of `kind`."""
    seen: list[live_hub.Message] = []
    deadline = time.monotonic() + timeout
    while not any(m.kind == kind for m in seen):
        assert time.monotonic() < deadline, f"no {kind} message; got {seen}"
        seen += await inbox.take(0.2)
    return seen


def test_ten_tabs_share_one_subscription_and_each_gets_every_message(redis_client):
    async def scenario() -> None:
        assert _subscribers(redis_client) == [0, 0, 0]
        hub = live_hub.hub_for(REDIS_TEST_URL)
        assert live_hub.hub_for(REDIS_TEST_URL) is hub  # one per loop and URL
        inboxes = [hub.register() for _ in range(10)]
        for inbox in inboxes:
            await _take_until(inbox, live_hub.SUBSCRIBED)
        assert _subscribers(redis_client) == [1, 1, 1]  # not one per tab
        late = hub.register()  # a tab opened while the hub is subscribed: told at once
        assert [m.kind for m in await late.take(0)] == [live_hub.SUBSCRIBED]
        inboxes.append(late)

        redis_client.publish(events.channel_for(redis_client), b'{"job_id": 1}')
        redis_client.publish(changes.channel_for(redis_client), b'{"topics": ["conflicts"]}')
        redis_client.publish(alerts.channel_for(redis_client), b'{"alert": 2}')
        redis_client.publish("holovitals:jobs:db99", b'{"job_id": 3}')  # another installation
        for inbox in inboxes:
            got = await _take_until(inbox, live_hub.ALERTS)
            assert [(m.kind, m.data) for m in got] == [
                (live_hub.JOBS, b'{"job_id": 1}'),
                (live_hub.CHANGES, b'{"topics": ["conflicts"]}'),
                (live_hub.ALERTS, b'{"alert": 2}'),
            ]
        assert _subscribers(redis_client) == [1, 1, 1]
        assert hub.subscriptions == 1

    asyncio.run(scenario())


def test_the_subscription_closes_after_the_last_tab_leaves(redis_client, monkeypatch):
    monkeypatch.setattr(live_hub, "LINGER", 0.3)
    monkeypatch.setattr(live_hub, "READ_TIMEOUT", 0.1)

    async def scenario() -> None:
        hub = live_hub.hub_for(REDIS_TEST_URL)
        first, second = hub.register(), hub.register()
        await _take_until(first, live_hub.SUBSCRIBED)
        hub.unregister(first)
        await asyncio.sleep(0.6)
        assert _subscribers(redis_client) == [1, 1, 1]  # one tab is still open
        hub.unregister(second)
        await _until(lambda: _subscribers(redis_client) == [0, 0, 0])
        again = hub.register()  # the next tab starts it again
        await _take_until(again, live_hub.SUBSCRIBED)
        assert _subscribers(redis_client) == [1, 1, 1]

    asyncio.run(scenario())


def test_a_tab_that_falls_behind_is_told_to_re_read(redis_client, monkeypatch):
    monkeypatch.setattr(live_hub, "INBOX_SIZE", 5)

    async def scenario() -> None:
        hub = live_hub.hub_for(REDIS_TEST_URL)
        slow, quick = hub.register(), hub.register()
        await _take_until(slow, live_hub.SUBSCRIBED)
        await _take_until(quick, live_hub.SUBSCRIBED)
        got: list[live_hub.Message] = []
        for n in range(8):
            redis_client.publish(events.channel_for(redis_client), b'{"job_id": %d}' % n)
            while len(got) <= n:
                got += await quick.take(1.0)  # the other tab keeps up and misses nothing
        assert [m.data for m in got] == [b'{"job_id": %d}' % n for n in range(8)]
        # The slow tab's inbox held five; the rest were dropped: it must re-read.
        assert [m.kind for m in await slow.take(0)] == [live_hub.OVERFLOW]
        assert await slow.take(0) == []

    asyncio.run(scenario())


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis")
    server.data_dir.mkdir()
    server.start()
    yield server
    server.stop()


def test_a_redis_restart_is_signalled_and_the_hub_resubscribes(private_redis, monkeypatch):
    monkeypatch.setattr(live_hub, "RECONNECT_DELAYS", (0.1, 0.2))
    client = redis.Redis(unix_socket_path=str(private_redis.socket_path), socket_timeout=2)

    async def scenario() -> None:
        hub = live_hub.hub_for(private_redis.url)
        tabs = [hub.register() for _ in range(3)]
        for tab in tabs:
            await _take_until(tab, live_hub.SUBSCRIBED)
        assert private_redis.process is not None
        private_redis.process.kill()  # SIGKILL: no goodbye on the socket
        private_redis.process.wait()
        for tab in tabs:
            await _take_until(tab, live_hub.LOST)
        assert not hub.subscribed
        await asyncio.to_thread(private_redis.start)  # the same socket, as `up` does
        for tab in tabs:
            await _take_until(tab, live_hub.SUBSCRIBED)
        assert hub.subscribed and hub.subscriptions == 2
        assert _subscribers(client) == [1, 1, 1]
        client.publish(events.channel_for(client), b'{"job_id": 5}')
        for tab in tabs:
            got = await _take_until(tab, live_hub.JOBS)
            assert got[-1].data == b'{"job_id": 5}'

    asyncio.run(scenario())
    client.close()


def test_shared_reads_serve_every_asker_whose_data_it_covers():
    calls: list[int] = []

    def slow_read(n: int) -> dict[str, list[int]]:
        calls.append(n)
        time.sleep(0.1)
        return {"rows": [n, len(calls)]}

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        stale_at = loop.time()
        ten = await asyncio.gather(
            *(shared_reads.read(slow_read, 7, since=stale_at) for _ in range(10))
        )
        assert calls == [7]  # ten tabs, one read
        assert all(r == {"rows": [7, 1]} for r in ten)
        assert len({id(r) for r in ten}) == 10 and len({id(r["rows"]) for r in ten}) == 10
        again = await shared_reads.read(slow_read, 7, since=stale_at)  # finished, still fresh
        assert again == {"rows": [7, 1]} and calls == [7]
        other = await shared_reads.read(slow_read, 8, since=stale_at)  # other arguments
        assert other == {"rows": [8, 2]}
        # Stale again after the read started: the asker must get a read that sees the change.
        newer = await shared_reads.read(slow_read, 7, since=loop.time())
        assert newer == {"rows": [7, 3]} and calls == [7, 8, 7]

    asyncio.run(scenario())


def test_a_failed_shared_read_is_not_served_again():
    answers = iter([RuntimeError("database away"), {"ok": True}])

    def flaky() -> dict[str, bool]:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def scenario() -> None:
        since = asyncio.get_running_loop().time()
        with pytest.raises(RuntimeError):
            await shared_reads.read(flaky, since=since)
        assert await shared_reads.read(flaky, since=since) == {"ok": True}

    asyncio.run(scenario())
