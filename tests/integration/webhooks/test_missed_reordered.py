"""Out-of-order notifications (concurrent senders) are no lost events: the catch-up stored
when a number seemed to be missing waits out the grace period and ends without a sync once
the late notification has arrived, while a number that never arrives still gets its
incremental sync. Real backend over HTTP, real `rq worker` with its scheduler, real Redis."""

from __future__ import annotations

import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import InboundStatus, JobType, SyncJob
from holovitals_sync.services import event_jobs
from holovitals_sync.services.webhooks import gaps

from .conftest import wait_for
from .test_inbound import _connection
from .test_missed_events import _missed, _post


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_reordered_notifications_ask_for_no_catch_up(backend, workers, redis_client):
    cid, secret = _connection(backend, "EHR reordered", "holovitals_hmac")
    url = backend.inbound(cid)
    # Two senders: 4 overtakes 3 (reordered); 6 never arrives (lost).
    for count in (1, 2, 4, 3, 5, 7):
        assert _post(url, secret, "event-notification", count, patient=f"pt-{count}") == 202
    reordered, lost = _missed(cid)
    assert (reordered.event_key, lost.event_key) == ("missed:4", "missed:7")

    workers.start(1)
    wait_for(lambda: all(e.status is not InboundStatus.RECEIVED for e in _missed(cid)), timeout=60)
    reordered, lost = _missed(cid)
    # Decided only after the grace period, and the late 3 had closed the hole by then.
    assert (
        reordered.processed_at - reordered.received_at
    ).total_seconds() >= gaps.GRACE_SECONDS - 0.5
    assert (reordered.status, reordered.job_id, reordered.rejection_reason) == (
        InboundStatus.PROCESSED,
        None,
        event_jobs.NOTHING_MISSED,
    )
    assert lost.status is InboundStatus.PROCESSED and lost.job_id is not None
    with session_scope() as session:
        incremental = session.exec(
            select(SyncJob).where(
                SyncJob.connection_id == cid, SyncJob.job_type == JobType.INCREMENTAL
            )
        ).all()
    assert [j.id for j in incremental] == [lost.job_id]  # one catch-up sync, for the loss
