"""The per-batch processing step between fetching and storing: a cheap screen for resources
nothing downstream can use, transformation rules, then validation under the connection's
mode (strict drops invalid records, lenient stores and flags them).

Every screen, rule and validation failure becomes a RecordError of the job. Errors are
written idempotently: a batch replayed after a crash (or retried after a failed commit)
finds its errors already there and adds none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ...models import EHRConnection, ErrorSeverity, RecordError, SyncedRecord, SyncJob
from ..transformation.compile import TransformResult
from ..validation import CustomValidator, batch_patients, persist_errors, validate_batch
from ..validation.issues import Layer, ValidationIssue
from ..validation.references import PATIENT_ELEMENTS, patient_id
from . import runcache
from .screening import Rejected, screen

# Full FHIR model validation (fhir.resources) measured ~2k resources/s here, slower than
# the rest of the pipeline together: kept off the hot path as DESIGN.md advises. The screen,
# required elements, patient references and custom rules still run on every batch.
STRUCTURAL = False


@dataclass(slots=True)
class ProcessedBatch:
    """What the upsert stores, what it flags, and how many had blocking issues."""

    store: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    invalid: int = 0


def known_patients(session: Session, connection_id: int,
                   resources: Sequence[dict[str, Any]]) -> set[str]:
    """Patients referenced by the batch that the connection already stores (one query)."""
    wanted = {pid for res in resources for name in PATIENT_ELEMENTS
              if isinstance(res.get(name), dict) and (pid := patient_id(res[name]))}
    wanted -= batch_patients(resources)
    cache = runcache.current(connection_id)
    known = wanted & cache.patients if cache is not None else set()
    wanted -= known  # a run asks once for each patient found stored
    if not wanted:
        return known
    table = SyncedRecord.__table__
    query = sa.select(table.c.remote_id).where(
        table.c.connection_id == connection_id, table.c.resource_type == "Patient",
        table.c.remote_id.in_(sorted(wanted)))
    found = {row[0] for row in session.execute(query)}
    if cache is not None:
        cache.patients |= found
    return known | found


def rule_issues(results: Sequence[TransformResult]) -> list[ValidationIssue]:
    """A warning per rule that could not apply (the record itself is still processed)."""
    issues = []
    for result in results:
        res = result.resource
        rtype, rid = str(res.get("resourceType")), res.get("id")
        for failure in result.failures:
            issues.append(ValidationIssue(
                rtype, rid if isinstance(rid, str) else None,
                f"rule {failure.rule_id} ({failure.kind.value})",
                f"transformation failed: {failure.message}", Layer.CUSTOM,
                ErrorSeverity.WARNING))
    return issues


def _key(issue: ValidationIssue) -> tuple[str, str | None, str | None, str]:
    # The same truncation persist_errors applies, so stored rows compare equal.
    return (issue.resource_type[:64], issue.resource_id[:200] if issue.resource_id else None,
            issue.path[:500] if issue.path else None,
            f"[{issue.layer.value}] {issue.message}"[:1000])


def new_issues(session: Session, job_id: int | None,
               issues: Sequence[ValidationIssue]) -> list[ValidationIssue]:
    """The issues this job has not recorded yet (one query for the batch)."""
    if not issues or job_id is None:
        return list(issues)
    table = RecordError.__table__
    types = sorted({_key(i)[0] for i in issues})
    ids = sorted({rid for i in issues if (rid := _key(i)[1])})
    query = sa.select(table.c.resource_type, table.c.remote_id, table.c.path,
                      table.c.message).where(
        table.c.job_id == job_id, table.c.resource_type.in_(types),
        sa.or_(table.c.remote_id.in_(ids), table.c.remote_id.is_(None)))
    seen = {tuple(row) for row in session.execute(query)}
    fresh = []
    for issue in issues:
        key = _key(issue)
        if key not in seen:
            seen.add(key)
            fresh.append(issue)
    return fresh


def custom_rules(connection: EHRConnection) -> CustomValidator | None:
    """The connection's custom validation rules, compiled once for the batch."""
    rules = connection.validation_rules or []
    return CustomValidator(rules) if rules else None


def process_batch(session: Session, *, job: SyncJob, connection: EHRConnection,
                  resources: Sequence[Any],
                  screened: tuple[list[dict[str, Any]], Rejected] | None = None
                  ) -> ProcessedBatch:
    """Screen, transform and validate one batch.

    Args:
        session: The batch's transaction (record errors are written in it).
        job: The running job.
        connection: Its connection (validation mode, rules).
        resources: The fetched resources, as the EHR sent them.
        screened: `screen(resources)` when already done (the sync loop screens in its
            prefetch thread); its errors are recorded here all the same.

    Returns:
        The batch split into stored, flagged and invalid.
    """
    usable, rejected = screened if screened is not None else screen(resources)
    results = runcache.transform(session, connection.id, usable)
    report = validate_batch([r.resource for r in results], mode=connection.validation_mode,
                            known_patients=known_patients(session, connection.id, usable),
                            structural=STRUCTURAL, custom=custom_rules(connection))
    issues = [*rejected.issues, *rule_issues(results), *report.errors]
    persist_errors(session, errors=new_issues(session, job.id, issues),
                   connection_id=connection.id, job_id=job.id)
    return ProcessedBatch(store=report.valid, flagged=report.flagged,
                          invalid=rejected.count + len(report.flagged) + len(report.dropped))

