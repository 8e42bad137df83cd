"""A conflict between the HoloVitals copy and the EHR copy of one record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .enums import ConflictKind, ConflictStatus, ResolutionStrategy, Severity
from .types import created_at_field, enum_type, json_field, time_field, updated_at_field


class Conflict(SQLModel, table=True):
    __tablename__ = "conflict"
    __table_args__ = (
        # Open conflicts by severity: the dashboard's cards and the conflicts tab.
        sa.Index("ix_conflict_status_severity", "status", "severity", "created_at"),
        # One open conflict per record and remote version, however often a sync re-finds it.
        sa.UniqueConstraint("record_id", "remote_version", "kind", name="uq_conflict_record_ver"),
        # Write-backs still owed to the EHR: the conflicts workers' sweep finds stranded ones.
        sa.Index("ix_conflict_write_back", "write_back_queued_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="synced_record.id", ondelete="CASCADE", index=True)
    connection_id: int = Field(foreign_key="ehr_connection.id", ondelete="CASCADE", index=True)
    job_id: int | None = Field(default=None, foreign_key="sync_job.id", ondelete="SET NULL")
    resource_type: str = Field(max_length=64)
    kind: ConflictKind = Field(default=ConflictKind.FIELD, sa_type=enum_type(ConflictKind))
    remote_version: str | None = Field(default=None, max_length=64)
    fields: list[str] = json_field(list)  # FHIR element paths in conflict
    base_values: dict[str, Any] = json_field()
    local_values: dict[str, Any] = json_field()
    remote_values: dict[str, Any] = json_field()
    severity: Severity = Field(default=Severity.LOW, sa_type=enum_type(Severity))
    status: ConflictStatus = Field(default=ConflictStatus.OPEN, sa_type=enum_type(ConflictStatus))
    strategy: ResolutionStrategy | None = Field(default=None, sa_type=enum_type(ResolutionStrategy))
    resolution: dict[str, Any] | None = json_field(nullable=True)  # chosen/merged values
    reason: str | None = Field(default=None, max_length=2000)
    resolved_by: str | None = Field(default=None, max_length=200)
    resolved_at: datetime | None = time_field()
    # Set while the resolved record's write to the EHR is owed (queued, or waiting for a
    # retry); the outcome is `resolution["write_back"]` (services.conflicts.writeback).
    write_back_queued_at: datetime | None = time_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
