"""The per-batch processing step between fetching and storing: a cheap screen for resources
nothing downstream can use, transformation rules, then validation under the connection's
mode (strict drops invalid records, lenient stores and flags them).

A run's batches are processed in order by one `BatchProcessor`, in the sync's prefetch
thread, while the previous batch is written: the processing is pure CPU, so it overlaps the
writer's database round trips.

Whether a referenced patient is held is not decided here: a run may fetch Observations
before Patients (real servers list types alphabetically), so a reference is only checked
for its form, and the run's end decides the rest (`validation.pending`).

Every screen, rule and validation failure becomes a RecordError of the job, written in the
batch's transaction (`record_issues`). Errors are written idempotently: a batch replayed
after a crash (or retried after a failed commit) finds its errors already there and adds
none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from ...models import EHRConnection, ErrorSeverity, RecordError
from ..transformation.compile import RuleBook, TransformResult
from ..transformation.service import DataTransformationService
from ..validation import CustomValidator, persist_errors, validate_batch
from ..validation.issues import Layer, ValidationIssue
from ..validation.references import deferred
from .screening import screen

# Full FHIR model validation (fhir.resources) measured ~2k resources/s here, slower than
# the rest of the pipeline together: kept off the hot path (the design's choice). The screen,
# required elements, patient references and custom rules still run on every batch.
STRUCTURAL = False


@dataclass(slots=True)
class ProcessedBatch:
    """What the upsert stores, what it flags, how many had blocking issues, and the issues
    to record (not yet checked against those the job already recorded)."""

    store: list[dict[str, Any]] = field(default_factory=list)
    flagged: list[dict[str, Any]] = field(default_factory=list)
    invalid: int = 0
    issues: list[ValidationIssue] = field(default_factory=list)


def rule_issues(results: Sequence[TransformResult]) -> list[ValidationIssue]:
    """A warning per rule that could not apply (the record itself is still processed)."""
    issues = []
    for result in results:
        res = result.resource
        rtype, rid = str(res.get("resourceType")), res.get("id")
        for failure in result.failures:
            issues.append(
                ValidationIssue(
                    rtype,
                    rid if isinstance(rid, str) else None,
                    f"rule {failure.rule_id} ({failure.kind.value})",
                    f"transformation failed: {failure.message}",
                    Layer.CUSTOM,
                    ErrorSeverity.WARNING,
                )
            )
    return issues


def custom_rules(connection: EHRConnection) -> CustomValidator | None:
    """The connection's custom validation rules, compiled once for the run."""
    rules = connection.validation_rules or []
    return CustomValidator(rules) if rules else None


class BatchProcessor:
    """Screens, transforms and validates one run's batches, its rules compiled once (`load`)."""

    def __init__(self, connection: EHRConnection, rules: RuleBook) -> None:
        self.mode = connection.validation_mode
        self.rules = rules
        self.custom = custom_rules(connection)

    @classmethod
    def load(cls, session: Session, connection: EHRConnection) -> BatchProcessor:
        """The connection's processor, its inbound rules read and compiled in `session`."""
        return cls(connection, DataTransformationService(session).compile_for(connection.id))

    def process(self, resources: Sequence[Any]) -> ProcessedBatch:
        """The batch split into stored, flagged and invalid, with its issues."""
        usable, rejected = screen(resources)
        results = self._transform(usable)
        report = validate_batch(
            [r.resource for r in results],
            mode=self.mode,
            known_patients=deferred,
            structural=STRUCTURAL,
            custom=self.custom,
        )
        return ProcessedBatch(
            store=report.valid,
            flagged=report.flagged,
            invalid=rejected.count + len(report.flagged) + len(report.dropped),
            issues=[*rejected.issues, *rule_issues(results), *report.errors],
        )

    def _transform(self, resources: list[dict[str, Any]]) -> list[TransformResult]:
        # Without any rule a resource passes as it is: no copy, no per-rule loop (a deep
        # copy per resource was ~10 us, the largest single cost of a batch without rules).
        if not self.rules.rules:
            return [TransformResult(resource) for resource in resources]
        return self.rules.apply_batch(resources)


def _key(issue: ValidationIssue) -> tuple[str, str | None, str | None, str]:
    # The same truncation persist_errors applies, so stored rows compare equal.
    return (
        issue.resource_type[:64],
        issue.resource_id[:200] if issue.resource_id else None,
        issue.path[:500] if issue.path else None,
        f"[{issue.layer.value}] {issue.message}"[:1000],
    )


def new_issues(
    session: Session, job_id: int | None, issues: Sequence[ValidationIssue]
) -> list[ValidationIssue]:
    """The issues this job has not recorded yet (one query for the batch)."""
    if not issues or job_id is None:
        return list(issues)
    table = RecordError.__table__
    types = sorted({_key(i)[0] for i in issues})
    ids = sorted({rid for i in issues if (rid := _key(i)[1])})
    query = sa.select(
        table.c.resource_type, table.c.remote_id, table.c.path, table.c.message
    ).where(
        table.c.job_id == job_id,
        table.c.resource_type.in_(types),
        sa.or_(table.c.remote_id.in_(ids), table.c.remote_id.is_(None)),
    )
    seen = {tuple(row) for row in session.execute(query)}
    fresh = []
    for issue in issues:
        key = _key(issue)
        if key not in seen:
            seen.add(key)
            fresh.append(issue)
    return fresh


def record_issues(
    session: Session, *, job_id: int | None, connection_id: int, issues: Sequence[ValidationIssue]
) -> None:
    """The batch's issues as RecordErrors of the job, each once (replays add none)."""
    persist_errors(
        session,
        errors=new_issues(session, job_id, issues),
        connection_id=connection_id,
        job_id=job_id,
    )
