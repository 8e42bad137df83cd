"""A sync job: one run asked for by a person, a token, a schedule or a webhook event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .enums import Direction, FetchMode, JobStatus, JobType, Priority, RequesterKind
from .types import created_at_field, enum_type, json_field, time_field, updated_at_field

# A job's counters, in the order the dashboard and the API show them: the columns below, the
# event payloads, the parent's sums over its parts and the jobs table all take them from here.
COUNTERS = (
    "fetched",
    "created",
    "updated",
    "unchanged",
    "invalid",
    "conflicts",
    "written",
    "deleted",
)


class SyncJobBase(SQLModel):
    connection_id: int = Field(foreign_key="ehr_connection.id", ondelete="CASCADE", index=True)
    job_type: JobType = Field(sa_type=enum_type(JobType))
    direction: Direction = Field(default=Direction.INBOUND, sa_type=enum_type(Direction))
    mode: FetchMode = Field(default=FetchMode.AUTO, sa_type=enum_type(FetchMode))
    priority: Priority = Field(default=Priority.DEFAULT, sa_type=enum_type(Priority))
    patient_id: str | None = Field(default=None, max_length=200)  # remote Patient id
    resource_type: str | None = Field(default=None, max_length=64)


class SyncJob(SyncJobBase, table=True):
    __tablename__ = "sync_job"
    __table_args__ = (
        # The dashboard lists recent jobs per status and per connection.
        sa.Index("ix_sync_job_status_created", "status", "created_at"),
        sa.Index("ix_sync_job_connection_created", "connection_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    status: JobStatus = Field(default=JobStatus.PENDING, sa_type=enum_type(JobStatus))
    requested_by_kind: RequesterKind = Field(sa_type=enum_type(RequesterKind))
    requested_by: str | None = Field(default=None, max_length=200)
    rq_job_id: str | None = Field(default=None, max_length=64, index=True, unique=True)

    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    conflicts: int = 0
    written: int = 0  # outbound: records the EHR accepted
    deleted: int = 0  # records tombstoned: the EHR no longer has them
    total_estimate: int | None = None
    progress: float = Field(default=0.0, ge=0.0, le=1.0)

    attempts: int = 0
    max_attempts: int = 3
    last_error: str | None = Field(default=None, max_length=2000)  # never PHI
    # Where a resumed run picks up: resource type, page link or export state.
    checkpoint: dict[str, Any] = json_field()
    # A full sync split across workers: its children point to it, each with its part
    # (resource types, a block of patients, export files); the parent adds up their counts.
    parent_id: int | None = Field(
        default=None, foreign_key="sync_job.id", ondelete="CASCADE", index=True
    )
    part: dict[str, Any] | None = json_field(nullable=True)
    # The OpenTelemetry trace of the latest run (32 hex digits; set when tracing is on).
    trace_id: str | None = Field(default=None, max_length=32)

    created_at: datetime = created_at_field()
    queued_at: datetime | None = time_field()
    started_at: datetime | None = time_field()
    finished_at: datetime | None = time_field()
    heartbeat_at: datetime | None = time_field()
    updated_at: datetime = updated_at_field()
