"""An outbound-only job that meets a changed EHR shows the conflict itself, in the same job.

It once counted `conflicts: 1` while the conflicts list stayed empty (detection ran only
after an inbound pass), and both sides replacing the only phone number merged into two
numbers written to the EHR.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    Conflict,
    ConflictKind,
    ConflictStatus,
    Direction,
    EHRConnection,
    JobType,
    ResolutionStrategy,
    SyncedRecord,
)
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.server import SandboxServer
from holovitals_sync.services import records
from holovitals_sync.services.audit import Actor
from holovitals_sync.services.conflicts import resolve
from tests.factories import make_connection
from tests.integration.sync.conftest import start, wait_status
from tests.waiting import wait_for

CLERK = Actor.system("registration-clerk")
HOME = {"system": "phone", "use": "home"}


@pytest.fixture
def own_ehr() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(patients=3, seed=47)) as server:
        yield server


@pytest.fixture
def linked(sync_db: str, own_ehr: SandboxServer) -> EHRConnection:
    with session_scope() as session:
        return make_connection(
            session,
            "Writing Hospital",
            base_url=own_ehr.base_url,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            scopes="system/*.read system/*.write",
        )


def _edit_here(connection_id: int, pid: str, **changes) -> None:
    with session_scope() as session:
        row = records.find(session, connection_id, "Patient", pid)
        records.replace_local(
            session,
            row,
            {**row.local_copy, **changes},
            if_match=records.local_etag(row),
            actor=CLERK,
        )


def _edit_there(ehr: SandboxServer, pid: str, **changes) -> None:
    ehr.state.store.update({**ehr.state.store.get("Patient", pid).resource(), **changes})


def test_a_412_on_an_outbound_job_is_a_conflict_on_the_list(linked, own_ehr, workers):
    workers.start(1)
    wait_status(start(linked.id), "completed")
    pid = sorted(r.id for r in own_ehr.state.store.candidates("Patient"))[0]
    # Both sides replace the only (home) phone number, each with another one.
    _edit_there(own_ehr, pid, telecom=[{**HOME, "value": "555-0100"}])
    wait_status(start(linked.id, JobType.INCREMENTAL), "completed")
    _edit_here(linked.id, pid, telecom=[{**HOME, "value": "555-0111"}])
    _edit_there(own_ehr, pid, telecom=[{**HOME, "value": "555-0122"}])

    job = wait_status(
        start(linked.id, JobType.INCREMENTAL, direction=Direction.OUTBOUND), "completed"
    )
    with session_scope() as session:
        conflicts = session.exec(select(Conflict).where(Conflict.connection_id == linked.id)).all()
    assert job.conflicts == len(conflicts) == 1  # the count and the list agree
    conflict = conflicts[0]
    assert conflict.kind is ConflictKind.STALE_WRITE and conflict.job_id == job.id
    assert conflict.fields == ["telecom[0].value"]  # a conflict, not a union of numbers
    assert (conflict.local_values, conflict.remote_values) == (
        {"telecom[0].value": "555-0111"},
        {"telecom[0].value": "555-0122"},
    )
    assert own_ehr.state.store.get("Patient", pid).resource()["telecom"] == [
        {**HOME, "value": "555-0122"}
    ]  # nothing written over the EHR's change

    with session_scope() as session:
        resolve(
            session,
            conflict_id=conflict.id,
            strategy=ResolutionStrategy.USE_LOCAL,
            reason="the patient confirmed the new number at the desk",
            actor=CLERK,
            write_back=True,
        )
    with session_scope() as session:
        assert session.get(Conflict, conflict.id).status is ConflictStatus.RESOLVED
    workers.start(1, queues=["conflicts.default"])  # the write-back was queued on commit
    wait_for(
        lambda: (
            own_ehr.state.store.get("Patient", pid).resource()["telecom"]
            == [{**HOME, "value": "555-0111"}]
        ),
        timeout=60,
    )  # the EHR holds the chosen value


def test_a_record_the_ehr_deleted_before_the_write_is_a_remote_deleted_conflict(
    linked, own_ehr, workers
):
    workers.start(1)
    wait_status(start(linked.id), "completed")
    pid = sorted(r.id for r in own_ehr.state.store.candidates("Patient"))[-1]
    _edit_here(linked.id, pid, gender="unknown")
    own_ehr.state.store.delete("Patient", pid)
    job = wait_status(
        start(linked.id, JobType.INCREMENTAL, direction=Direction.OUTBOUND), "completed"
    )
    with session_scope() as session:
        conflict = session.exec(select(Conflict).where(Conflict.connection_id == linked.id)).one()
        record = session.get(SyncedRecord, conflict.record_id)
    assert job.conflicts == 1 and conflict.kind is ConflictKind.REMOTE_DELETED
    assert record.remote_id == pid and record.conflict_pending and not record.deleted
