"""Many dashboard tabs of one backend process: one Redis subscription, every tab live.

Each tab is a real state tree with the real on_load handlers and live watcher
(tests/integration/ui/tabs.py) on one event loop, as one backend process serves them; the
database is SQLite with the real services; events come from the workers' own publisher
(`JobEvents`) on real Redis: the tests' database on the machine's server, or a private
redis-server that is killed and started again on its socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from cryptography.fernet import Fernet

from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.embedded_redis import EmbeddedRedis
from holovitals_sync.models import JobStatus, Role, SyncJob
from holovitals_sync.services import alerts, auth, changes
from holovitals_sync.services.orchestration import events
from holovitals_sync.services.platform.redis import redis_connection
from holovitals_sync.ui import live_hub
from holovitals_sync.ui.state.jobs import JobsState, SummaryState
from tests.conftest import REDIS_TEST_URL
from tests.factories import PASSWORD, make_connection, make_job, make_user
from tests.integration.ui.tabs import Tab

TABS = 10


def _use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str) -> None:
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", f"sqlite:///{tmp_path / 'live.db'}")
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", redis_url)
    monkeypatch.setenv("HOLOVITALS_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    get_engine.cache_clear()
    redis_connection.cache_clear()


def _world() -> tuple[str, int]:
    """A viewer's session cookie and a running job."""
    migrations.upgrade(get_settings().effective_database_url)
    with session_scope() as session:
        connection = make_connection(session, base_url="http://127.0.0.1:9/fhir")
        job = make_job(session, connection.id, JobStatus.RUNNING)
        make_user(session, "viewer", Role.VIEWER)
        job_id = job.id
    with session_scope() as session:
        token, _user = auth.sign_in(session, username="viewer", password=PASSWORD, ip=None)
    return token, job_id


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_client
) -> Iterator[tuple[str, int]]:
    _use(monkeypatch, tmp_path, REDIS_TEST_URL)
    yield _world()
    get_engine().dispose()
    redis_connection.cache_clear()


def _move(job_id: int, **fields: object) -> SyncJob:
    """What a worker does: commit the job's new counters (the row is the truth)."""
    with session_scope() as session:
        job = session.get(SyncJob, job_id)
        assert job is not None
        for name, value in fields.items():
            setattr(job, name, value)
        session.flush()
        session.expunge(job)
        return job


def _publish(job: SyncJob) -> None:
    """...and publish its event, with the workers' own publisher."""
    events.JobEvents(redis_connection()).progress(job, force=True)


def _subscribers(client: redis.Redis) -> list[int]:
    channels = [events.channel_for(client), alerts.channel_for(client), changes.channel_for(client)]
    return [count for _channel, count in client.pubsub_numsub(*channels)]


def _row(tab: Tab, job_id: int) -> tuple[str, int]:
    row = next(r for r in tab.state(JobsState).rows if r.id == job_id)
    return row.status, row.fetched


async def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _open(token: str, count: int) -> list[Tab]:
    """Tabs on the dashboard: rows loaded by on_load, then the watcher started."""
    tabs = [Tab(token) for _ in range(count)]
    for tab in tabs:
        await tab.call(JobsState, "load")
        tab.watch()
    # Live, and the re-read that follows subscribing done (the cards are its last part).
    await _until(lambda: all(t.live and t.state(SummaryState).checked for t in tabs))
    return tabs


class Statements:
    """Counts the SQL statements the app's engine runs (the database work of a phase)."""

    def __init__(self) -> None:
        self.count = 0
        sa.event.listen(get_engine(), "before_cursor_execute", self._one)

    def _one(self, *_args: object) -> None:
        self.count += 1

    def close(self) -> None:
        sa.event.remove(get_engine(), "before_cursor_execute", self._one)


def test_ten_tabs_share_one_subscription_and_every_tab_follows_the_job(world, redis_client):
    token, job_id = world

    async def scenario() -> None:
        tabs = await _open(token, TABS)
        # One subscriber per channel for ten tabs (a subscription per tab made ten).
        assert _subscribers(redis_client) == [1, 1, 1]
        assert live_hub.hub_for(REDIS_TEST_URL).tabs == TABS

        _publish(_move(job_id, fetched=40, progress=0.4))
        await _until(lambda: all(_row(t, job_id) == ("running", 40) for t in tabs))
        _publish(_move(job_id, fetched=90, progress=0.9))
        await _until(lambda: all(_row(t, job_id) == ("running", 90) for t in tabs))
        job = _move(job_id, fetched=100, progress=1.0, status=JobStatus.COMPLETED)
        events.JobEvents(redis_connection()).state(job)
        await _until(lambda: all(_row(t, job_id) == ("completed", 100) for t in tabs))

        for tab in tabs:
            await tab.close()
        assert live_hub.hub_for(REDIS_TEST_URL).tabs == 0  # each tab unregistered

    asyncio.run(scenario())


def test_ten_tabs_cost_the_database_about_what_one_does(world):
    """The re-read every tab does on subscribing (cards, rows, alerts, lists) is shared."""
    token, _job_id = world

    async def opened(count: int) -> int:
        statements = Statements()
        try:
            tabs = [Tab(token) for _ in range(count)]
            for tab in tabs:
                tab.watch()
            await _until(lambda: all(t.live and t.state(SummaryState).checked for t in tabs))
            for tab in tabs:
                await tab.close()
        finally:
            statements.close()
        return statements.count

    one = asyncio.run(opened(1))  # a loop each: a hub each, both subscribing from scratch
    ten = asyncio.run(opened(TABS))
    # Each tab still checks its own session; everything else is read once for all.
    assert ten < 3 * one, (one, ten)


@pytest.fixture
def private_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[EmbeddedRedis, str, int]]:
    server = EmbeddedRedis(tmp_path / "redis")
    server.data_dir.mkdir()
    _use(monkeypatch, tmp_path, server.start())
    monkeypatch.setattr(live_hub, "RECONNECT_DELAYS", (0.2, 0.5))
    try:
        yield server, *_world()
    finally:
        server.stop()
        get_engine().dispose()
        redis_connection.cache_clear()


def test_tabs_survive_a_redis_restart_and_re_read_what_they_missed(private_redis):
    server, token, job_id = private_redis
    client = redis.Redis(unix_socket_path=str(server.socket_path), socket_timeout=2)

    async def scenario() -> None:
        tabs = await _open(token, 3)
        _publish(_move(job_id, fetched=10, progress=0.1))
        await _until(lambda: all(_row(t, job_id) == ("running", 10) for t in tabs))

        assert server.process is not None
        server.process.kill()  # SIGKILL, as test_up_redis_restart does to up's Redis
        server.process.wait()
        await _until(lambda: not any(t.live for t in tabs))  # "reconnecting…"
        # The worker goes on while Redis is away: its commit stands, its event is lost.
        _move(job_id, fetched=77, progress=0.7)
        await asyncio.to_thread(server.start)  # the same socket, as `up` restarts it
        await _until(lambda: all(t.live for t in tabs))
        # Resubscribed, each tab re-read its rows: what was missed is on screen.
        await _until(lambda: all(_row(t, job_id) == ("running", 77) for t in tabs))
        assert _subscribers(client) == [1, 1, 1]
        _publish(_move(job_id, fetched=99, progress=0.99))
        await _until(lambda: all(_row(t, job_id) == ("running", 99) for t in tabs))
        for tab in tabs:
            await tab.close()

    asyncio.run(scenario())
    client.close()
