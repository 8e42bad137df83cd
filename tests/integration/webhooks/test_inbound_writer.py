"""The receiver's SQLite writer works on the event loop (`api.loop_writer`): waiting for the
write lock must not hold the loop, a failed batch must leave nothing behind and the next one
must land, and the WAL it never checkpoints as it commits is checkpointed now and then.

The backend is the real API in uvicorn on loopback; a second connection to the same SQLite
file holds the write lock, as an RQ worker's batch does.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from holovitals_sync.api import intake, loop_writer
from holovitals_sync.db import create_db_engine
from holovitals_sync.sandbox import notify

from .conftest import wait_for
from .test_inbound import _connection, _events, _signed

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class LockHolder:
    """Holds SQLite's write lock from another connection until `release`."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_db_engine(database_url)
        self.held, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        with self.engine.connect() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            self.held.set()
            self._release.wait(30)
            connection.rollback()

    def __enter__(self) -> LockHolder:
        self._thread.start()
        assert self.held.wait(10)
        return self

    def release(self) -> None:
        self._release.set()
        self._thread.join(10)

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.engine.dispose()


def _inbound(backend) -> tuple[str, str]:
    """A connection's inbound URL on the backend and its signing secret."""
    cid, secret = _connection(backend, "EHR writer", "holovitals_hmac")
    return backend.inbound(cid), secret


def _post(url: str, secret: str, patient: str) -> httpx.Response:
    body, _ = notify.build("event-notification", "id-only", f"Patient/{patient}", None)
    return httpx.post(url, content=body, headers=_signed(body, secret), timeout=30)


def _assert_stored_alone(answer: httpx.Response) -> None:
    assert answer.status_code == 202
    assert [e.id for e in _events()] == [answer.json()["event_id"]]


@SQLITE_ONLY
def test_waiting_for_the_write_lock_holds_the_answer_not_the_loop(backend, wh_db, redis_client):
    url, secret = _inbound(backend)
    with LockHolder(wh_db) as lock, ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_post, url, secret, "pt-00001")
        time.sleep(0.3)  # the event is in the writer, polling for the lock
        began = time.monotonic()
        # The same process answers other requests meanwhile: the loop is free.
        other = httpx.get(f"{backend.url}/api/connections", headers=backend.headers("admin"))
        assert other.status_code == 200 and time.monotonic() - began < 1.0
        assert not waiting.done()
        lock.release()
        answer = waiting.result(timeout=10)
    _assert_stored_alone(answer)


@SQLITE_ONLY
def test_a_batch_that_cannot_get_the_lock_fails_alone_and_the_next_lands(
    backend, wh_db, redis_client, monkeypatch: pytest.MonkeyPatch
):
    url, secret = _inbound(backend)
    monkeypatch.setattr(loop_writer, "LOCK_WAIT_SECONDS", 0.3)
    with LockHolder(wh_db):
        refused = _post(url, secret, "pt-00001")
    assert refused.status_code == 500  # the sender retries; nothing was stored
    assert _events() == []
    accepted = _post(url, secret, "pt-00001")  # the same event, retried
    _assert_stored_alone(accepted)


@SQLITE_ONLY
def test_the_writer_never_checkpoints_as_it_commits_but_the_intake_does_now_and_then(
    backend, wh_db, redis_client, monkeypatch: pytest.MonkeyPatch
):
    url, secret = _inbound(backend)
    monkeypatch.setattr(loop_writer, "CHECKPOINT_EVERY", 3)
    checkpoints: list[float] = []
    real = intake.checkpoint

    def counted() -> None:
        checkpoints.append(time.monotonic())
        real()

    monkeypatch.setattr(intake, "checkpoint", counted)
    for n in range(7):  # one at a time: each is a batch and a commit of its own
        assert _post(url, secret, f"pt-{n:05d}").status_code == 202
    wait_for(lambda: len(checkpoints) == 2, timeout=10)
    assert len(_events()) == 7

    # The writer's own connection: no busy handler (it polls) and no checkpoint on commit.
    writer = loop_writer.LoopWriter()
    connection = writer._open()
    pragma = connection.exec_driver_sql
    assert pragma("PRAGMA busy_timeout").scalar_one() == 0
    assert pragma("PRAGMA wal_autocheckpoint").scalar_one() == 0
    writer._drop()
