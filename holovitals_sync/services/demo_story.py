"""What `up --demo` does once the product is up, so every screen has something real to show.

Each step goes through the product as a user or an EHR would; nothing is written into a
table by hand:

1. A webhook subscription to the sandbox's inbox (a subscriber stand-in on loopback).
2. A full sync of the demo connection.
3. The same patient's birth date is corrected on both sides: in HoloVitals through the
   records service (as the platform's API does) and at the EHR through its FHIR API.
   A bidirectional sync then meets the EHR's newer version (412) and finds the conflict.
4. A patient sync for a patient the EHR does not have fails (404, not retried), and the demo
   connection's failure alert threshold is lowered to one, so the failure raises an alert.
5. A clinic day at the sandbox, whose ADT feed reaches the MLLP listener: the admitted and
   updated patients are synced within seconds.

Runs once per data directory (`demo-story.done` marks it); `up --demo` starts it as a
one-shot child once the workers and the sandbox answer.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlmodel import select

from ..config import Settings
from ..db import session_scope
from ..models import (
    AlertKind,
    Direction,
    EHRConnection,
    JobType,
    RequesterKind,
    SyncedRecord,
    SyncJob,
    WebhookSubscription,
)
from . import audit, records
from .alerts.thresholds import set_threshold
from .demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_NAME
from .orchestration import JobRequest, start_job
from .webhooks.subscriptions import SubscriptionIn, create

log = logging.getLogger(__name__)
DONE_FILE = "demo-story.done"
ACTOR = audit.Actor.system("demo")
SUBSCRIBER = "Demo subscriber (sandbox inbox)"
MISSING_PATIENT = "pt-not-at-this-hospital"
T = TypeVar("T")


@dataclass(frozen=True)
class Told:
    """What the story changed: the patient, and the birth date each side set."""

    patient_id: str
    local_birth_date: str
    remote_birth_date: str


def corrections(birth_date: str) -> tuple[str, str]:
    """Two different corrections of a birth date's day, each differing from it.

    Computed from the current value, so the EHR's change is a change even when the story
    runs against a sandbox that an earlier run already edited.
    """
    year, month, day = birth_date.split("-")
    first, second = (int(day) + 1, int(day) + 2) if int(day) <= 26 else (int(day) - 1, int(day) - 2)
    return f"{year}-{month}-{first:02d}", f"{year}-{month}-{second:02d}"


class StoryError(RuntimeError):
    """A step did not come about in time."""


@dataclass(frozen=True)
class Story:
    settings: Settings
    fhir_base: str  # the sandbox's FHIR base URL

    @property
    def inbox(self) -> str:
        # "localhost", not an IP: `up --demo` lets webhooks reach this host name only.
        return self.fhir_base.replace("/fhir", "/_sandbox/inbox").replace("127.0.0.1", "localhost")


def wait_until(
    what: str, check: Callable[[], T | None], timeout: float, interval: float = 1.0
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except (httpx.HTTPError, OSError):
            found = None
        if found is not None:
            return found
        time.sleep(interval)
    raise StoryError(f"{what} did not happen within {timeout:.0f} s")


def _connection_id() -> int:
    with session_scope() as session:
        row = session.exec(select(EHRConnection).where(EHRConnection.name == DEMO_NAME)).one()
        return int(row.id)


def _subscribe(story: Story) -> None:
    with session_scope() as session:
        if (
            session.exec(
                select(WebhookSubscription).where(WebhookSubscription.name == SUBSCRIBER)
            ).first()
            is not None
        ):
            return
        create(
            session,
            actor=ACTOR,
            data=SubscriptionIn(
                name=SUBSCRIBER,
                url=story.inbox,
                event_types=["sync.completed", "sync.failed", "conflict.detected"],
            ),
        )


def _start(connection_id: int, job_type: JobType, **scope: Any) -> int:
    with session_scope() as session:
        job = start_job(
            session,
            request=JobRequest(connection_id=connection_id, job_type=job_type, **scope),
            requested_by_kind=RequesterKind.SYSTEM,
            requested_by="demo",
            actor=ACTOR,
        )
        return int(job.id)


def _finished(job_id: int, timeout: float) -> SyncJob:
    def done() -> SyncJob | None:
        with session_scope() as session:
            job = session.get(SyncJob, job_id)
            return job if job is not None and job.status.finished else None

    return wait_until(f"sync job {job_id}", done, timeout)


def _first_patient(connection_id: int) -> str:
    with session_scope() as session:
        return session.exec(
            select(SyncedRecord.remote_id)
            .where(
                SyncedRecord.connection_id == connection_id, SyncedRecord.resource_type == "Patient"
            )
            .order_by(SyncedRecord.remote_id)
        ).first()


def _edit_locally(connection_id: int, patient_id: str) -> Told:
    """The platform corrects the birth date (the API's PATCH does the same)."""
    with session_scope() as session:
        row = records.find(session, connection_id, "Patient", patient_id)
        local, remote = corrections(str((row.local_copy or {}).get("birthDate", "1960-01-01")))
        body = {**(row.local_copy or {}), "birthDate": local}
        records.replace_local(session, row, body, if_match=records.local_etag(row), actor=ACTOR)
    return Told(patient_id, local, remote)


def _edit_at_the_ehr(story: Story, told: Told) -> None:
    """Registration corrects the same birth date differently, through the EHR's FHIR API."""
    with httpx.Client(base_url=story.fhir_base, timeout=30) as ehr:
        token = ehr.post(
            "auth/token",
            data={
                "grant_type": "client_credentials",
                "scope": "system/Patient.write system/Patient.read",
            },
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        )
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        current = ehr.get(f"Patient/{told.patient_id}", headers=headers)
        current.raise_for_status()
        body = {**current.json(), "birthDate": told.remote_birth_date}
        ehr.put(
            f"Patient/{told.patient_id}",
            json=body,
            headers={**headers, "If-Match": current.headers["ETag"]},
        ).raise_for_status()


def _ready(story: Story) -> None:
    def sandbox() -> bool | None:
        return True if httpx.get(f"{story.fhir_base}/metadata", timeout=5).is_success else None

    wait_until("the sandbox EHR answering", sandbox, 120)


def _clinic_day(story: Story) -> None:
    """A clinic day at the sandbox: its ADT feed (admissions, updates, a resend, an update
    ahead of its admission, a merge) goes over MLLP to the listener, and the patients it
    names are synced within seconds (the connection page's HL7 ADT feed card shows it)."""
    port = story.settings.mllp_port
    if not port:
        return

    def listening() -> bool | None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return True
        except OSError:
            return None

    wait_until("the MLLP listener accepting", listening, 120)
    day = httpx.post(
        story.fhir_base.replace("/fhir", "/_sandbox/clinic-day"), params={"changes": 20}, timeout=60
    ).json()
    log.info("demo: clinic day sent its ADT feed: %s", day.get("adt"))


def tell(story: Story) -> Told | None:
    """Run the story once; None when it had run before (its marker exists)."""
    done = Path(story.settings.data_dir) / DONE_FILE
    if done.exists():
        return None
    _ready(story)
    connection_id = _connection_id()
    _subscribe(story)
    full = _finished(_start(connection_id, JobType.FULL), 600)
    log.info("demo: full sync %s %s (%s records)", full.id, full.status.value, full.created)
    told = _edit_locally(connection_id, _first_patient(connection_id))
    _edit_at_the_ehr(story, told)
    both = _finished(
        _start(connection_id, JobType.INCREMENTAL, direction=Direction.BIDIRECTIONAL), 300
    )
    log.info(
        "demo: bidirectional sync %s %s, %s conflict(s)", both.id, both.status.value, both.conflicts
    )
    with session_scope() as session:
        set_threshold(
            session, kind=AlertKind.JOB_FAILURES, value=1, connection_id=connection_id, actor=ACTOR
        )
    failed = _finished(_start(connection_id, JobType.PATIENT, patient_id=MISSING_PATIENT), 300)
    log.info("demo: patient sync %s %s", failed.id, failed.status.value)
    _clinic_day(story)
    done.write_text("the demo story ran; delete this file to run it again\n")
    return told
