"""The receiver's SQLite writer works on the event loop (`api.loop_writer`): waiting for the
write lock must not hold the loop, a failed batch must leave nothing behind and the next one
must land, and the WAL it never checkpoints as it commits is checkpointed now and then.

The backend is the real API in uvicorn on loopback; a second connection to the same SQLite
file holds the write lock, as an RQ worker's batch does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import pytest

from holovitals_sync.api import intake, loop_writer
from holovitals_sync.db import create_db_engine, session_scope
from holovitals_sync.models import InboundStatus
from holovitals_sync.sandbox import notify
from holovitals_sync.services.webhooks import store
from holovitals_sync.services.webhooks.notifications import EventInfo
from tests.factories import make_connection

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
    _, connection = writer._open()
    cursor = connection.cursor()
    assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] == 0
    assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    writer._drop()


@SQLITE_ONLY
def test_the_writers_rows_are_the_rows_the_orm_writes(wh_db):
    """The writer bypasses SQLAlchemy's statement handling, not its types: what it stores
    reads back through the ORM exactly as `store.insert_events` stores it."""
    with session_scope() as session:
        cid = make_connection(session).id
    kinds = [
        EventInfo(key="", source="fhir_subscription", event_type="event-notification"),
        EventInfo(
            key="",
            source="ehr",
            event_type="delete",
            resource_type="Observation",
            resource_id="obs-1",
            patient_ref="Patient/pt-1",
            events_since=7,
            recheck=True,
        ),
    ]

    def batch(prefix: str) -> list[tuple[int, EventInfo]]:
        return [(cid, replace(kind, key=f"{prefix}-{n}")) for n, kind in enumerate(kinds)]

    with session_scope() as session:
        orm_ids = store.commit_events(session, batch("orm"))
    writer = loop_writer.LoopWriter()
    try:
        loop_ids = asyncio.run(writer.write([*batch("loop"), batch("loop")[1]]))
        # A replay of a stored key, and of one stored earlier in the same batch: no id.
        replayed = asyncio.run(writer.write([batch("orm")[0], *batch("new")]))
    finally:
        writer._drop()
    assert None not in orm_ids and loop_ids[2] is None and None not in loop_ids[:2]
    assert replayed[0] is None and None not in replayed[1:]

    # Byte for byte as stored, the time's text form included (both are taken now).
    with create_db_engine(wh_db).connect() as connection:
        stored = {
            row[0]: row[1:]
            for row in connection.exec_driver_sql(
                "SELECT event_key, connection_id, source, event_type, resource_type,"
                " resource_id, patient_ref, recheck, status, job_id, processed_at,"
                " typeof(received_at), length(received_at), substr(received_at, 1, 10)"
                " FROM inbound_event"
            )
        }
    assert len(stored) == 6
    for n in range(len(kinds)):
        assert stored[f"loop-{n}"] == stored[f"orm-{n}"]
    events = {e.event_key: e for e in _events()}
    assert events["loop-1"].recheck is True and events["loop-1"].status == InboundStatus.RECEIVED
    assert events["loop-0"].received_at.tzinfo is not None
