"""A sync announces what it stored: one data event per created or updated record, for the
subscriptions that want it, in the batch's transaction; unchanged records announce nothing."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import select

from holovitals_sync.config import get_settings
from holovitals_sync.db import session_scope
from holovitals_sync.models import JobType, WebhookDelivery
from holovitals_sync.services import audit
from holovitals_sync.services.webhooks.subscriptions import SubscriptionIn, create

from .conftest import start, wait_status

WANTED = ["patient.created", "observation.created", "observation.updated"]


@pytest.fixture
def subscription(sync_db: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("HOLOVITALS_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    get_settings.cache_clear()
    with session_scope() as session:
        sub, _ = create(
            session,
            data=SubscriptionIn(
                name="data events", url="http://127.0.0.1:9/hook", event_types=WANTED
            ),
            actor=audit.Actor.system("tests"),
        )
        return sub.id


def _events() -> Counter[str]:
    with session_scope() as session:
        return Counter(d.event_type for d in session.exec(select(WebhookDelivery)))


def _count(ehr, rtype: str, ids: dict[str, list[str]] | None = None) -> int:
    if ids is not None:
        return len(ids.get(rtype, []))
    return len(ehr.state.store.candidates(rtype))


def test_each_stored_change_is_announced_once(connection, ehr, workers, subscription):
    workers.start(1)
    job = wait_status(start(connection.id), "completed", "failed")
    assert job.status.value == "completed", job.last_error
    after_full = _events()
    assert after_full["patient.created"] == _count(ehr, "Patient")
    assert after_full["observation.created"] == _count(ehr, "Observation")
    assert set(after_full) <= {*WANTED, "sync.completed"}  # only what was subscribed

    day = ehr.clinic_day(changes=15, seed=8)
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "completed", "failed")
    assert job.status.value == "completed", job.last_error
    updated_obs = set(day["updated"].get("Observation", [])) - set(
        day["created"].get("Observation", [])
    )
    after_day = _events() - after_full
    assert after_day["observation.updated"] == len(updated_obs)
    assert after_day["observation.created"] == _count(ehr, "Observation", day["created"])
    assert after_day["patient.created"] == _count(ehr, "Patient", day["created"])

    # Nothing changed since: nothing new is announced.
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "completed", "failed")
    assert job.status.value == "completed", job.last_error
    assert not {
        k: v for k, v in (_events() - after_full - after_day).items() if k != "sync.completed"
    }
