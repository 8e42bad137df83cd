"""A record's validity never depends on the order a run fetches types in, and a flag is
recomputed whenever its cause changes (the patient arrives, a rule changes, a resync).

Real servers list types alphabetically, so Observations may arrive before their Patients:
that once flagged every non-Patient record of a full sync, for good, and strict mode dropped
them. Here the Observations are synced before any Patient, in strict mode.
"""

from __future__ import annotations

from sqlmodel import func, select

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    EHRConnection,
    JobType,
    RecordError,
    SyncedRecord,
    ValidationMode,
)
from holovitals_sync.services.audit import Actor
from holovitals_sync.services.validation_rules import ValidationRuleService
from tests.integration.sync.conftest import start, wait_status
from tests.waiting import wait_for

ADMIN = Actor.system("tests")


def _count(connection_id: int, *terms) -> int:
    with session_scope() as session:
        return session.exec(
            select(func.count())
            .select_from(SyncedRecord)
            .where(SyncedRecord.connection_id == connection_id, *terms)
        ).one()


def _mode(connection: EHRConnection, mode: ValidationMode) -> None:
    with session_scope() as session:
        session.get(EHRConnection, connection.id).validation_mode = mode


def test_observations_before_their_patients_wait_and_are_never_dropped(connection, ehr, workers):
    _mode(connection, ValidationMode.STRICT)
    workers.start(1)
    observations = len(ehr.state.store.candidates("Observation"))
    first = wait_status(
        start(connection.id, JobType.RESOURCE, resource_type="Observation"), "completed"
    )
    # Stored, every one, though no patient is held yet: strict mode drops none of them.
    assert first.created == observations > 0
    waiting = _count(connection.id, SyncedRecord.reference_missing)
    assert waiting == observations and first.invalid == observations
    assert _count(connection.id, SyncedRecord.flagged_invalid) == 0
    with session_scope() as session:
        errors = session.exec(select(RecordError).where(RecordError.job_id == first.id)).all()
    assert len(errors) == observations
    assert all("not held for this connection" in e.message for e in errors)

    # The patients arrive with a later run: the waiting records are cleared by it.
    patients = wait_status(
        start(connection.id, JobType.RESOURCE, resource_type="Patient"), "completed"
    )
    assert patients.created > 0 and patients.invalid == 0
    assert _count(connection.id, SyncedRecord.reference_missing) == 0

    full = wait_status(start(connection.id, JobType.FULL), "completed")
    assert full.invalid == 0
    assert _count(connection.id, SyncedRecord.reference_missing) == 0
    assert _count(connection.id, SyncedRecord.flagged_invalid) == 0


def test_flags_follow_rule_changes_and_resyncs(connection, ehr, workers):
    workers.start(1, ["sync.default", "transformations.default"])
    wait_status(start(connection.id), "completed")
    observations = _count(connection.id, SyncedRecord.resource_type == "Observation")
    assert observations > 0 and _count(connection.id, SyncedRecord.flagged_invalid) == 0

    # A rule every stored Observation fails: they are flagged without any resync.
    with session_scope() as session:
        rule = ValidationRuleService(session, actor=ADMIN).add(
            connection.id,
            {
                "check": "pattern",
                "name": "preliminary only",
                "resource_type": "Observation",
                "path": "status",
                "pattern": "preliminary",
            },
        )

    def flagged(count: int):
        return lambda: _count(connection.id, SyncedRecord.flagged_invalid) == count or None

    wait_for(flagged(observations), 60)
    # Removed again: the flags go, still without a resync.
    with session_scope() as session:
        ValidationRuleService(session, actor=ADMIN).delete(connection.id, rule.id)
    wait_for(flagged(0), 60)

    # A flag left by older code on unchanged records: the next resync clears it.
    with session_scope() as session:
        for row in session.exec(
            select(SyncedRecord).where(SyncedRecord.connection_id == connection.id).limit(5)
        ):
            row.flagged_invalid = True
    again = wait_status(start(connection.id), "completed")
    assert again.updated == 0  # nothing changed at the EHR
    assert _count(connection.id, SyncedRecord.flagged_invalid) == 0
