"""Missed notifications: a jump in `events-since-subscription-start`, or a heartbeat counting
more events than arrived, stores an `events-missed` event that becomes an incremental sync."""

from __future__ import annotations

import httpx
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import InboundEvent, JobType, SyncJob
from holovitals_sync.sandbox import notify
from holovitals_sync.services.platform.redis import redis_connection
from holovitals_sync.services.webhooks.queueing import PENDING_INBOUND

from .conftest import wait_for
from .test_inbound import _connection, _signed


def _post(url: str, secret: str, kind: str, events: int, patient: str = "pt-00001") -> int:
    """Post one numbered notification and wait for the receiver's follow-up to end.

    The receiver notes the number (and stores a catch-up for a hole) after answering, then
    queues the event: once the event is on the pending list, its number is noted. Waiting
    keeps the order the test sends in, which is what these tests are about.
    """
    body, _ = notify.build(kind, "id-only", f"Patient/{patient}", None, events=events)
    response = httpx.post(url, content=body, headers=_signed(body, secret))
    if response.status_code == 202:
        event_id = str(response.json()["event_id"]).encode()
        pending = redis_connection()
        wait_for(lambda: event_id in pending.lrange(PENDING_INBOUND, 0, -1) or None, timeout=10)
    return response.status_code


def _missed(connection_id: int) -> list[InboundEvent]:
    with session_scope() as session:
        return list(
            session.exec(
                select(InboundEvent)
                .where(
                    InboundEvent.connection_id == connection_id,
                    InboundEvent.event_type == "events-missed",
                )
                .order_by(InboundEvent.id)
            )
        )


def test_gaps_in_the_event_count_ask_for_a_catch_up(backend, workers, redis_client):
    cid, secret = _connection(backend, "EHR gaps", "holovitals_hmac")
    url = backend.inbound(cid)
    # 1, 2, 3 in order, then 3 again out of order: nothing missed.
    for count in (1, 2, 3, 3):
        assert _post(url, secret, "event-notification", count) == 202
    assert _post(url, secret, "heartbeat", 3) == 202
    assert _missed(cid) == []
    # 4 and 5 never arrive: 6 shows the jump.
    assert _post(url, secret, "event-notification", 6, patient="pt-00002") == 202
    (first,) = _missed(cid)
    assert (first.resource_type, first.patient_ref) == (None, None)
    # A heartbeat saying 8 when 6 is the last seen: 7 and 8 were lost too.
    assert _post(url, secret, "heartbeat", 8) == 202
    assert _post(url, secret, "heartbeat", 8) == 202  # the same news once only
    assert len(_missed(cid)) == 2

    workers.start(1)

    def incremental_jobs() -> list[SyncJob]:
        with session_scope() as session:
            return list(
                session.exec(
                    select(SyncJob).where(
                        SyncJob.connection_id == cid, SyncJob.job_type == JobType.INCREMENTAL
                    )
                )
            )

    wait_for(lambda: all(e.job_id for e in _missed(cid)), timeout=60)
    jobs = incremental_jobs()
    assert jobs and {e.job_id for e in _missed(cid)} <= {j.id for j in jobs}
    assert all(j.requested_by_kind.value == "webhook" for j in jobs)
