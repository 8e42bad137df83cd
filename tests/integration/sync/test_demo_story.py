"""The demo's story, told against the sandbox EHR with real workers: every dashboard screen
gets something real (syncs, a conflict found by a sync, a failed job, an alert, deliveries),
each made the way a user or an EHR would make it, and only once per data directory."""

from __future__ import annotations

import httpx
from sqlmodel import select

from holovitals_sync.config import get_settings
from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    AlertKind,
    AlertStatus,
    Conflict,
    ConflictStatus,
    JobStatus,
    SyncedRecord,
    SyncJob,
    WebhookDelivery,
)
from holovitals_sync.services import demo_story
from holovitals_sync.services.alerts import evaluate
from holovitals_sync.services.demo import DEMO_NAME
from holovitals_sync.services.platform.redis import redis_connection
from tests.integration.sync.conftest import QUEUES
from tests.waiting import wait_for

WEBHOOK_QUEUES = ["webhooks.high", "webhooks.default", "webhooks.low"]


def test_the_demo_story_fills_every_screen_once(connection, ehr, workers, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_WEBHOOK_ALLOW_HOSTS", "localhost")  # as `up --demo` sets
    # No MLLP listener runs here: the clinic day's ADT feed is told against a real listener
    # in tests/integration/hl7/test_sandbox_feed.py and through `up --demo` in tests/e2e.
    monkeypatch.setenv("HOLOVITALS_MLLP_PORT", "0")
    get_settings.cache_clear()
    with session_scope() as session:  # the story finds the demo connection by its name
        session.get(type(connection), connection.id).name = DEMO_NAME
    workers.start(1, [*QUEUES, *WEBHOOK_QUEUES])
    story = demo_story.Story(get_settings(), ehr.base_url)
    marker = get_settings().data_dir / demo_story.DONE_FILE
    marker.unlink(missing_ok=True)

    told = demo_story.tell(story)
    assert told is not None

    with session_scope() as session:
        jobs = {j.job_type.value: j for j in session.exec(select(SyncJob))}
        conflict = session.exec(select(Conflict)).one()
        record = session.get(SyncedRecord, conflict.record_id)
    assert jobs["full"].status is JobStatus.COMPLETED and jobs["full"].created > 0
    assert jobs["incremental"].status is JobStatus.COMPLETED and jobs["incremental"].conflicts == 1
    # Found by the sync: both sides changed the birth date, each differently.
    assert conflict.status is ConflictStatus.OPEN and conflict.fields == ["birthDate"]
    assert (conflict.local_values, conflict.remote_values) == (
        {"birthDate": told.local_birth_date},
        {"birthDate": told.remote_birth_date},
    )
    at_the_ehr = ehr.state.store.get("Patient", record.remote_id).resource()
    assert record.remote_id == told.patient_id
    assert at_the_ehr["birthDate"] == told.remote_birth_date  # nothing overwritten
    failed = jobs["patient"]
    assert failed.status is JobStatus.FAILED and failed.attempts == 1
    assert "the EHR does not have it" in failed.last_error

    with session_scope() as session:
        raised = evaluate(session, redis_connection(), get_settings())
    assert [(a.kind, a.status) for a in raised] == [(AlertKind.JOB_FAILURES, AlertStatus.OPEN)]

    def delivered() -> list[str] | None:
        with session_scope() as session:
            rows = session.exec(select(WebhookDelivery)).all()
        done = sorted(r.event_type for r in rows if r.status.value == "delivered")
        return done if len(done) == 4 else None

    assert wait_for(delivered, 60) == sorted(
        ["sync.completed", "sync.completed", "conflict.detected", "sync.failed"]
    )
    inbox = httpx.get(ehr.base_url.replace("/fhir", "/_sandbox/inbox")).json()
    assert inbox["total"] == 4
    assert all(
        any(h.lower().startswith("x-holovitals-signature") for h in d["headers"])
        for d in inbox["deliveries"]
    )

    # Told once: a second start of `up --demo` adds nothing.
    assert demo_story.tell(story) is None
    with session_scope() as session:
        assert len(session.exec(select(SyncJob)).all()) == 3
    assert marker.exists()
    marker.unlink()
