"""Synced records (the three bodies conflict detection needs) and their validation errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .enums import ErrorSeverity
from .types import (
    created_at_field,
    document_field,
    enum_type,
    time_field,
    updated_at_field,
)


class SyncedRecord(SQLModel, table=True):
    __tablename__ = "synced_record"
    __table_args__ = (
        # One row per remote resource: the bulk upsert and a racing second worker rely on it.
        sa.UniqueConstraint(
            "connection_id", "resource_type", "remote_id", name="uq_record_conn_type_remote"
        ),
        sa.Index("ix_record_connection_patient", "connection_id", "patient_ref"),
        # Only records with local changes (few): outbound writes and conflict detection
        # read them by connection in id order; imported records pay no insert into it.
        sa.Index(
            "ix_record_dirty",
            "connection_id",
            "id",
            sqlite_where=sa.text("dirty = 1"),
            postgresql_where=sa.text("dirty"),
        ),
        sa.Index(
            "ix_record_reference_missing",
            "connection_id",
            "id",
            sqlite_where=sa.text("reference_missing = 1"),
            postgresql_where=sa.text("reference_missing"),
        ),
        # Deletes asked for in HoloVitals (fewer still): outbound runs read them with the
        # dirty ones.
        sa.Index(
            "ix_record_local_deleted",
            "connection_id",
            "id",
            sqlite_where=sa.text("local_deleted = 1"),
            postgresql_where=sa.text("local_deleted"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="ehr_connection.id", ondelete="CASCADE")
    resource_type: str = Field(max_length=64)
    remote_id: str = Field(max_length=200)
    patient_ref: str | None = Field(default=None, max_length=200)  # "Patient/<id>"
    # Last version both sides agreed on; HoloVitals' copy; the EHR's latest copy. A NULL
    # base or local body means "the same as the remote body": the bulk upsert stores a
    # record both sides agree on once, not three times (a third of the write of a sync).
    # Read them through `base_copy` and `local_copy`.
    base_body: dict[str, Any] | None = document_field()
    local_body: dict[str, Any] | None = document_field()
    remote_body: dict[str, Any] | None = document_field()
    remote_version: str | None = Field(default=None, max_length=64)
    remote_last_updated: datetime | None = time_field()
    content_hash: str | None = Field(default=None, max_length=64)  # of the remote body
    dirty: bool = Field(default=False)  # local changes not yet written to the EHR
    # An outbound write found the EHR moved on (412/409): conflict detection takes it up.
    conflict_pending: bool = Field(default=False)
    # Invalid by its own content under the connection's rules (required elements, custom
    # rules), stored under lenient validation. Recomputed when the content or the rules
    # change, and on every resync.
    flagged_invalid: bool = Field(default=False)
    # Its patient is not held for this connection. Decided when a run ends, never by the
    # order a run fetched types in (a reference the run has not seen yet is only pending),
    # and checked again by every later run until the patient arrives.
    reference_missing: bool = Field(default=False)
    # Tombstone: the EHR no longer has it (kept, never physically removed).
    deleted: bool = Field(default=False)
    deleted_at: datetime | None = time_field()
    delete_reason: str | None = Field(default=None, max_length=200)
    # HoloVitals deleted its copy (the records API): the next outbound or bidirectional job
    # sends the delete to the EHR, with If-Match on the EHR's version; until then the
    # record is dirty. When and who, for the conflict a changed EHR copy opens and for the
    # tombstone's reason. Cleared when the delete is done or withdrawn.
    local_deleted: bool = Field(default=False)
    local_deleted_at: datetime | None = time_field()
    local_deleted_by: str | None = Field(default=None, max_length=200)
    # The full sync or id sweep that last saw it at the EHR: a complete one tombstones what
    # it did not see (kept in the database, so a resumed run still knows).
    seen_job_id: int | None = Field(default=None)
    # The run that last wrote the record: a trace for the job's detail view, not a
    # relation kept by the database. A foreign key cost every imported record a look-up
    # and lock of the job row (~3.5 us of the server's ~20 on PostgreSQL, measured);
    # jobs are only ever deleted with their connection, whose records go with them.
    last_job_id: int | None = Field(default=None)
    last_synced_at: datetime | None = time_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()

    @property
    def invalid(self) -> bool:
        """Whether the record is invalid for any reason (its content, or its patient)."""
        return self.flagged_invalid or self.reference_missing

    @property
    def base_copy(self) -> dict[str, Any] | None:
        """The last version both sides agreed on."""
        return self.remote_body if self.base_body is None else self.base_body

    @property
    def local_copy(self) -> dict[str, Any] | None:
        """HoloVitals' copy of the record (edit it by assigning `local_body`)."""
        return self.remote_body if self.local_body is None else self.local_body


class RecordError(SQLModel, table=True):
    """A validation or processing failure of one resource; message and path carry no PHI."""

    __tablename__ = "record_error"
    __table_args__ = (sa.Index("ix_record_error_job", "job_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int | None = Field(default=None, foreign_key="sync_job.id", ondelete="CASCADE")
    connection_id: int = Field(foreign_key="ehr_connection.id", ondelete="CASCADE", index=True)
    resource_type: str = Field(max_length=64)
    remote_id: str | None = Field(default=None, max_length=200)
    path: str | None = Field(default=None, max_length=500)
    message: str = Field(max_length=1000)
    severity: ErrorSeverity = Field(default=ErrorSeverity.ERROR, sa_type=enum_type(ErrorSeverity))
    created_at: datetime = created_at_field()
