"""The generic adapter against a real FHIR R4 server none of us wrote (SEKMET, from PyPI).

Our sandbox agrees with our assumptions because we wrote it; this server does not know us.
It lists its types alphabetically (Patient after AllergyIntolerance, Condition, ...),
versions every write, answers a stale If-Match with 412, keeps deletes in `_history`, and
offers `$export`. A full sync must equal its content and flag nothing valid; an incremental
sync after PUT, POST and DELETE there must be exact, tombstones included; a local change
written back over a change made there must become a conflict a person resolves, after which
the server holds the chosen value.
"""

from __future__ import annotations

import random
import uuid

from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    AuthMethod,
    Conflict,
    ConflictKind,
    Direction,
    EHRConnection,
    JobType,
    ResolutionStrategy,
    SyncedRecord,
)
from holovitals_sync.services import records
from holovitals_sync.services.audit import Actor
from holovitals_sync.services.conflicts import resolve
from tests.factories import make_connection
from tests.integration.sync.conftest import start, wait_status
from tests.realserver import TYPES, RealServer
from tests.stored import local_hashes
from tests.waiting import wait_for

CLERK = Actor.system("registration-clerk")


def _connect(server: RealServer) -> EHRConnection:
    with session_scope() as session:
        return make_connection(
            session,
            "Real FHIR server",
            base_url=server.base_url,
            auth_method=AuthMethod.NONE,
            client_id="",
            client_secret=None,
        )


def _live(connection_id: int) -> dict[tuple[str, str], str]:
    with session_scope() as session:
        dead = {
            (r.resource_type, r.remote_id)
            for r in session.exec(
                select(SyncedRecord).where(
                    SyncedRecord.connection_id == connection_id, SyncedRecord.deleted
                )
            )
        }
    return {k: v for k, v in local_hashes(connection_id).items() if k[0] in TYPES and k not in dead}


def _flagged(connection_id: int) -> list[SyncedRecord]:
    with session_scope() as session:
        return list(
            session.exec(
                select(SyncedRecord).where(
                    SyncedRecord.connection_id == connection_id,
                    SyncedRecord.flagged_invalid | SyncedRecord.reference_missing,
                )
            )
        )


def test_a_full_sync_equals_the_server_and_flags_nothing_valid(real_server, sync_db, workers):
    connection = _connect(real_server)
    workers.start(1)
    job = wait_status(start(connection.id), "completed", "failed", timeout=180)
    assert job.status.value == "completed", job.last_error
    assert _live(connection.id) == real_server.everything()
    assert job.invalid == 0 and _flagged(connection.id) == []


def test_an_incremental_sync_after_put_post_and_delete_is_exact(real_server, sync_db, workers):
    connection = _connect(real_server)
    workers.start(1)
    wait_status(start(connection.id), "completed", timeout=180)
    server = real_server.everything()
    observations = sorted(rid for rtype, rid in server if rtype == "Observation")
    changed = [real_server.read("Observation", rid) for rid in observations[:3]]
    for obs in changed:  # a new note each time: the server is shared by the module's tests
        real_server.put({**obs, "note": [{"text": f"reviewed {uuid.uuid4().hex[:8]}"}]})
    patient = next(rid for rtype, rid in server if rtype == "Patient")
    added = [
        real_server.post(
            {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {"text": f"new finding {n}"},
                "subject": {"reference": f"Patient/{patient}"},
            }
        )
        for n in range(2)
    ]
    gone = observations[3:5]
    for rid in gone:
        real_server.delete("Observation", rid)

    job = wait_status(start(connection.id, JobType.INCREMENTAL), "completed", "failed", timeout=180)
    assert job.status.value == "completed", job.last_error
    assert (job.created, job.updated, job.deleted) == (2, 3, 2)
    assert _live(connection.id) == real_server.everything()
    with session_scope() as session:
        for rid in gone:
            tomb = session.exec(
                select(SyncedRecord).where(
                    SyncedRecord.connection_id == connection.id,
                    SyncedRecord.resource_type == "Observation",
                    SyncedRecord.remote_id == rid,
                )
            ).one()
            assert tomb.deleted and tomb.deleted_at is not None
    assert {("Condition", a["id"]) for a in added} <= set(_live(connection.id))
    assert _flagged(connection.id) == []


def test_a_write_back_over_a_change_there_is_a_conflict_resolved_by_a_person(
    real_server, sync_db, workers
):
    connection = _connect(real_server)
    workers.start(1)
    wait_status(start(connection.id), "completed", timeout=180)
    pid = sorted(rid for rtype, rid in real_server.everything() if rtype == "Patient")[1]
    # Dates of their own: the server is shared by the module's tests.
    year = random.randint(1900, 1999)
    ours, theirs = f"{year}-03-04", f"{year}-04-03"
    with session_scope() as session:  # HoloVitals corrects the birth date ...
        row = records.find(session, connection.id, "Patient", pid)
        records.replace_local(
            session,
            row,
            {**row.local_copy, "birthDate": ours},
            if_match=records.local_etag(row),
            actor=CLERK,
        )
    # ... and registration corrects it there first, differently.
    real_server.put({**real_server.read("Patient", pid), "birthDate": theirs})

    job = wait_status(
        start(connection.id, JobType.INCREMENTAL, direction=Direction.OUTBOUND),
        "completed",
        "failed",
        timeout=120,
    )
    assert job.status.value == "completed", job.last_error
    with session_scope() as session:
        conflict = session.exec(
            select(Conflict).where(Conflict.connection_id == connection.id)
        ).one()
    # The server refused the stale If-Match (412): nothing of ours overwrote its change.
    assert job.conflicts == 1 and conflict.kind is ConflictKind.STALE_WRITE
    assert conflict.fields == ["birthDate"]
    assert real_server.read("Patient", pid)["birthDate"] == theirs

    with session_scope() as session:
        resolve(
            session,
            conflict_id=conflict.id,
            strategy=ResolutionStrategy.USE_LOCAL,
            reason="the patient's passport says so",
            actor=CLERK,
            write_back=True,
        )
    workers.start(1, queues=["conflicts.default"])  # the write-back, queued on commit
    wait_for(lambda: real_server.read("Patient", pid)["birthDate"] == ours, timeout=60)
