"""Validate a batch under a connection's mode and persist the failures for a job.

Strict: invalid records are not stored. Lenient: they are stored and flagged
(`SyncedRecord.flagged_invalid`). Either way every failure becomes a `RecordError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from ...models import RecordError, ValidationMode
from .custom import CustomValidator
from .issues import ValidationIssue
from .references import KnownPatients, batch_patients, check_references
from .required import check_required
from .structural import validate_structure


@dataclass(slots=True)
class BatchValidation:
    """What the sync loop needs: what to store, what to flag, what to drop, and why."""

    valid: list[Any] = field(default_factory=list)  # store as they are
    flagged: list[Any] = field(default_factory=list)  # lenient: store and flag
    dropped: list[Any] = field(default_factory=list)  # strict: do not store
    errors: list[ValidationIssue] = field(default_factory=list)  # errors and warnings

    @property
    def to_store(self) -> list[Any]:
        return self.valid + self.flagged


def validate_resource(
    resource: Any,
    *,
    known_patients: KnownPatients | None = None,
    in_batch: Sequence[str] | set[str] = (),
    structural: bool = True,
    custom: CustomValidator | None = None,
) -> list[ValidationIssue]:
    """Every layer's issues for one resource (required, references, custom, structure)."""
    issues = check_required(resource)
    issues += check_references(resource, known=known_patients, in_batch=in_batch)
    if custom is not None:
        issues += custom.check(resource)
    if structural:
        issues += validate_structure(resource)
    return issues


def validate_batch(
    resources: Iterable[Any],
    *,
    mode: ValidationMode,
    known_patients: KnownPatients | None = None,
    structural: bool = True,
    custom: CustomValidator | None = None,
) -> BatchValidation:
    """Sort a batch into valid, flagged (lenient) and dropped (strict), with the errors.

    Args:
        resources: the batch, already transformed.
        mode: the connection's `validation_mode`.
        known_patients: patient ids the connection already holds (a set or a predicate).
        structural: run the full FHIR R4 model validation (the costly layer).
        custom: the connection's custom rules, compiled once for the batch.
    """
    batch = list(resources)
    in_batch = batch_patients(batch)
    out = BatchValidation()
    for resource in batch:
        issues = validate_resource(
            resource,
            known_patients=known_patients,
            in_batch=in_batch,
            structural=structural,
            custom=custom,
        )
        out.errors.extend(issues)
        if not any(issue.blocking for issue in issues):
            out.valid.append(resource)
        elif mode is ValidationMode.LENIENT:
            out.flagged.append(resource)
        else:
            out.dropped.append(resource)
    return out


def persist_errors(
    session: Session,
    *,
    errors: Iterable[ValidationIssue],
    connection_id: int,
    job_id: int | None = None,
) -> int:
    """Write `RecordError` rows for a job in one bulk insert; returns how many."""
    rows = [
        {
            "job_id": job_id,
            "connection_id": connection_id,
            "resource_type": e.resource_type[:64],
            "remote_id": e.resource_id[:200] if e.resource_id else None,
            "path": e.path[:500] if e.path else None,
            "message": f"[{e.layer.value}] {e.message}"[:1000],
            "severity": e.severity,
        }
        for e in errors
    ]
    if rows:
        session.bulk_insert_mappings(RecordError, rows)  # type: ignore[arg-type]
    return len(rows)
