"""Persisted means acknowledged, and nothing persisted is lost: with Redis unreachable the
receiver still stores and accepts (202) a signed event; the sweep of the webhooks
maintenance queues events left unqueued once they are old enough, each once, and a real
worker then processes them."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa
from sqlmodel import select

from holovitals_sync.config import get_settings
from holovitals_sync.db import session_scope
from holovitals_sync.models import InboundEvent, InboundStatus
from holovitals_sync.models.types import utcnow
from holovitals_sync.sandbox import notify
from holovitals_sync.services.platform.redis import redis_connection
from holovitals_sync.services.webhooks import queueing
from holovitals_sync.services.webhooks.sweep import LOCK, requeue_unqueued

from .conftest import wait_for
from .test_inbound import _connection, _signed


def _post(url: str, secret: str, patient: str) -> httpx.Response:
    body, _ = notify.build("vendor-event", "id-only", f"Patient/{patient}", None)
    return httpx.post(url, content=body, headers=_signed(body, secret), timeout=10)


def _rows(connection_id: int) -> list[InboundEvent]:
    with session_scope() as session:
        return list(
            session.exec(
                select(InboundEvent)
                .where(InboundEvent.connection_id == connection_id)
                .order_by(InboundEvent.id)
            )
        )


def _backdate(event_id: int, seconds: int) -> None:
    with session_scope() as session:
        session.execute(
            sa.update(InboundEvent)
            .where(InboundEvent.id == event_id)
            .values(received_at=utcnow() - timedelta(seconds=seconds))
        )


def _sweep(redis_client) -> int:
    redis_client.delete(LOCK)  # each call here stands for another maintenance tick
    with session_scope() as session:
        return requeue_unqueued(session)


def _pending(redis_client) -> list[int]:
    return [int(i) for i in redis_client.lrange(queueing.PENDING_INBOUND, 0, -1)]


def _unqueued(caplog) -> int:
    """Events the receiver reported stored but not queued (it queues after answering)."""
    return sum(
        int(r.getMessage().split()[0])
        for r in caplog.records
        if "stored but not queued" in r.getMessage()
    )


def test_stored_while_redis_is_down_then_swept_and_processed(
    backend, workers, redis_client, monkeypatch, caplog
):
    cid, secret = _connection(backend, "EHR sweep", "holovitals_hmac")
    url = backend.inbound(cid)

    # Redis unreachable for the receiver: storing is what the 202 promises, and it still does.
    reachable = get_settings().redis_url
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    redis_connection.cache_clear()
    answers = [_post(url, secret, f"pt-{n:05d}") for n in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
    wait_for(lambda: _unqueued(caplog) == 3, timeout=10, interval=0.02)
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", reachable)
    get_settings.cache_clear()
    redis_connection.cache_clear()

    rows = _rows(cid)
    assert [r.status for r in rows] == [InboundStatus.RECEIVED] * 3
    assert {r.id for r in rows} == {a.json()["event_id"] for a in answers}
    assert _pending(redis_client) == []  # never queued

    # Young events are left alone (their own follow-up may still be on its way).
    assert _sweep(redis_client) == 0
    for row in rows[:2]:
        _backdate(row.id, 120)
    assert _sweep(redis_client) == 2
    assert _pending(redis_client) == [rows[0].id, rows[1].id]
    assert _sweep(redis_client) == 0  # already waiting on the list: not pushed twice

    workers.start(1)
    wait_for(lambda: all(r.status is InboundStatus.PROCESSED for r in _rows(cid)[:2]), timeout=60)
    assert all(r.job_id for r in _rows(cid)[:2])
    assert _rows(cid)[2].status is InboundStatus.RECEIVED  # not old enough yet


def test_events_failed_only_for_lack_of_redis_are_taken_up_again(backend, workers, redis_client):
    """Releases before this one marked an event failed when its worker outlived Redis; the
    event was fine, so the sweep takes it back. One that failed for its own sake stays."""
    cid, secret = _connection(backend, "EHR revive", "holovitals_hmac")
    answers = [_post(backend.inbound(cid), secret, f"pt-{n:05d}") for n in range(4)]
    ids = [a.json()["event_id"] for a in answers]
    # The receiver queues each just after answering: wait for that, then lose them all, as
    # if Redis had gone away with them.
    wait_for(lambda: len(_pending(redis_client)) == 4, timeout=10, interval=0.02)
    redis_client.delete(queueing.PENDING_INBOUND)
    reasons = [
        "ConnectionError; retrying",
        "OperationalError; retry not queued",
        "ValidationError; not retried",
        "RuntimeError; retries used up",
    ]
    with session_scope() as session:
        for event_id, reason in zip(ids, reasons, strict=True):
            session.execute(
                sa.update(InboundEvent)
                .where(InboundEvent.id == event_id)
                .values(
                    status=InboundStatus.FAILED,
                    rejection_reason=reason,
                    received_at=utcnow() - timedelta(seconds=120),
                )
            )
    assert _sweep(redis_client) == 2
    assert sorted(_pending(redis_client)) == ids[:2]
    workers.start(1)
    wait_for(
        lambda: [r.status for r in _rows(cid)][:2] == [InboundStatus.PROCESSED] * 2, timeout=60
    )
    assert [r.status for r in _rows(cid)][2:] == [InboundStatus.FAILED] * 2
    assert _sweep(redis_client) == 0
