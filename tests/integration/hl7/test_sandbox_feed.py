"""The sandbox's ADT sender: a clinic day's changes go over MLLP to the listener as a real
feed would send them — a resend, an update before its admission, a merge — and every message
ends acknowledged, stored once and processed: the changed patients synced, the merge linked."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import HL7Message, InboundStatus, PatientMerge, SyncJob
from tests.factories import make_connection
from tests.integration.webhooks.conftest import Workers
from tests.waiting import wait_for

from .conftest import add_feed

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def workers(hl7_db, tmp_path):
    pool = Workers(tmp_path)
    pool.start(2)
    yield pool
    pool.stop_all()


def test_a_clinic_day_feed_becomes_syncs(hl7_db, sandbox, listener, workers):
    with session_scope() as session:
        cid = int(
            make_connection(
                session,
                "Sandbox feed",
                base_url=sandbox.base_url,
                client_id="holovitals-demo",
                client_secret="demo-secret",
                scopes="system/*.read system/*.write",
            ).id
        )
    add_feed(cid, "SANDBOXADT", "SANDBOX")
    time.sleep(0.3)  # a sender not known yet is looked up again after a quarter second
    sandbox.configure(adt_target=f"127.0.0.1:{listener.port}")
    try:
        # merge=1: the session's sandbox may have had its first clinic day in another test.
        day = httpx.post(
            f"{sandbox.origin}/_sandbox/clinic-day",
            params={"changes": 30, "seed": 11, "merge": 1},
            timeout=60,
        ).json()
    finally:
        sandbox.configure(adt_target=None)
    sent = day["adt"]
    assert sent["sent"] >= 4 and sent["acks"] == {"AA": sent["sent"]}, sent

    def processed() -> list[HL7Message] | None:
        with session_scope() as session:
            rows = list(session.exec(select(HL7Message).where(HL7Message.connection_id == cid)))
        return rows if rows and all(r.status != InboundStatus.RECEIVED for r in rows) else None

    rows = wait_for(processed, timeout=120)
    assert len(rows) == sent["sent"] - 1  # the resend was stored once
    assert all(r.status == InboundStatus.PROCESSED for r in rows), [r.outcome for r in rows]
    events = {r.message_type.split("^")[1] for r in rows}
    assert "A40" in events and ({"A01", "A04"} & events) and "A08" in events
    with session_scope() as session:
        merge = session.exec(select(PatientMerge).where(PatientMerge.connection_id == cid)).one()
        jobs = list(session.exec(select(SyncJob).where(SyncJob.connection_id == cid)))
    changed = {r.patient_id for r in rows}
    assert merge.survivor_patient_id in changed
    assert merge.merged_patient_id not in {j.patient_id for j in jobs}
    assert {j.patient_id for j in jobs} == changed  # every patient the feed named, synced
    assert len(jobs) <= len(rows) - 1  # and bursts about one patient coalesced
