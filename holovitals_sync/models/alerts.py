"""Operational alerts (queue depth, failing or slow jobs, ...) and per-connection thresholds.

An alert is about a *subject* (a queue, a connection's job type, one job, one subscription),
never about a patient: subject and message hold ids and counts only, no PHI.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .enums import Severity
from .types import UTCDateTime, enum_type, time_field, utcnow


class AlertKind(StrEnum):
    QUEUE_DEPTH = "queue_depth"  # waiting jobs of one queue family
    JOB_FAILURES = "job_failures"  # a connection's job type failing N times in a row
    JOB_SLOW = "job_slow"  # a running job far beyond its usual duration
    SUBSCRIPTION_DISABLED = "subscription_disabled"  # outbound webhook switched off
    CONFLICT_BACKLOG = "conflict_backlog"  # open high-severity conflicts of a connection
    FEED_SILENT = "feed_silent"  # an HL7 v2 feed that normally talks fell silent by day
    HL7_HELD = "hl7_held"  # ADT messages held until their connection's settings are fixed


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


# "Active" = not closed. Written as SQL text so the partial index reads the same on SQLite and
# PostgreSQL, in the model and in the migration.
ACTIVE_WHERE = "status <> 'closed'"


class Alert(SQLModel, table=True):
    __tablename__ = "alert"
    __table_args__ = (
        # One active (open or acknowledged) alert per condition: a second evaluator racing on
        # the same condition gets an IntegrityError instead of a duplicate row.
        sa.Index(
            "uq_alert_active_subject",
            "kind",
            "subject",
            unique=True,
            sqlite_where=sa.text(ACTIVE_WHERE),
            postgresql_where=sa.text(ACTIVE_WHERE),
        ),
        # The dashboard lists alerts per status, newest first.
        sa.Index("ix_alert_status_raised", "status", "raised_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: AlertKind = Field(sa_type=enum_type(AlertKind))
    severity: Severity = Field(default=Severity.MEDIUM, sa_type=enum_type(Severity))
    connection_id: int | None = Field(
        default=None, foreign_key="ehr_connection.id", ondelete="CASCADE", nullable=True
    )
    queue: str | None = Field(default=None, max_length=64)
    subject: str = Field(max_length=200)  # e.g. "queue:sync", "job:42"; ids only
    message: str = Field(max_length=1000)  # counts and thresholds only, never PHI
    status: AlertStatus = Field(default=AlertStatus.OPEN, sa_type=enum_type(AlertStatus))
    raised_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    acknowledged_at: datetime | None = time_field()
    acknowledged_by: str | None = Field(default=None, max_length=200)
    closed_at: datetime | None = time_field()
    occurrences: int = 1  # evaluations that found the condition while this alert was active
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class AlertThreshold(SQLModel, table=True):
    """A per-connection or per-queue override of one `HOLOVITALS_ALERT_*` default.

    A table rather than a JSON column on `ehr_connection`: queue thresholds belong to no
    connection, rows are validated and unique per target, and the connection table's owner
    needs no change.
    """

    __tablename__ = "alert_threshold"
    __table_args__ = (
        sa.UniqueConstraint("kind", "connection_id", "queue", name="uq_alert_threshold_target"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: AlertKind = Field(sa_type=enum_type(AlertKind))
    connection_id: int | None = Field(
        default=None, foreign_key="ehr_connection.id", ondelete="CASCADE", nullable=True
    )
    queue: str | None = Field(default=None, max_length=64)
    # Queue depth, failure streak, slow factor, conflict count or minutes of silence,
    # depending on `kind`.
    value: float = Field(gt=0)
