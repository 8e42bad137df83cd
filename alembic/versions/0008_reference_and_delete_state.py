"""Missing patient references apart from content validity; tombstones and id sweeps;
deletes asked for in HoloVitals

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from holovitals_sync.models.types import UTCDateTime

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Both partial: few records have a missing reference or are deleted, and they are looked
# up by connection (the end-of-run reference pass, the records list's filters).
_SQLITE_MISSING, _PG_MISSING = sa.text("reference_missing = 1"), sa.text("reference_missing")
# Fewer still: deletes asked for in HoloVitals, read by outbound runs with the dirty ones.
_SQLITE_LOCAL_DELETED, _PG_LOCAL_DELETED = sa.text("local_deleted = 1"), sa.text("local_deleted")
# Every connection gets a nightly id sweep (deletes the EHR announces no other way).
DEFAULT_SWEEP = "30 2 * * *"


def upgrade() -> None:
    with op.batch_alter_table("synced_record") as batch:
        batch.add_column(
            sa.Column("reference_missing", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("deleted_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("delete_reason", sa.String(length=200), nullable=True))
        # The run (full sync or id sweep) that last saw the record at the EHR.
        batch.add_column(sa.Column("seen_job_id", sa.Integer(), nullable=True))
        # A delete asked for in HoloVitals, not yet done at the EHR (and when, by whom).
        batch.add_column(
            sa.Column("local_deleted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("local_deleted_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("local_deleted_by", sa.String(length=200), nullable=True))
    with op.batch_alter_table("sync_job") as batch:
        batch.add_column(sa.Column("deleted", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("ehr_connection") as batch:
        batch.add_column(
            sa.Column(
                "sweep_schedule", sa.String(length=100), nullable=True, server_default=DEFAULT_SWEEP
            )
        )
    op.create_index(
        "ix_record_reference_missing",
        "synced_record",
        ["connection_id", "id"],
        sqlite_where=_SQLITE_MISSING,
        postgresql_where=_PG_MISSING,
    )
    op.create_index(
        "ix_record_local_deleted",
        "synced_record",
        ["connection_id", "id"],
        sqlite_where=_SQLITE_LOCAL_DELETED,
        postgresql_where=_PG_LOCAL_DELETED,
    )


def downgrade() -> None:
    op.drop_index("ix_record_local_deleted", table_name="synced_record")
    op.drop_index("ix_record_reference_missing", table_name="synced_record")
    with op.batch_alter_table("ehr_connection") as batch:
        batch.drop_column("sweep_schedule")
    with op.batch_alter_table("sync_job") as batch:
        batch.drop_column("deleted")
    with op.batch_alter_table("synced_record") as batch:
        batch.drop_column("local_deleted_by")
        batch.drop_column("local_deleted_at")
        batch.drop_column("local_deleted")
        batch.drop_column("seen_job_id")
        batch.drop_column("delete_reason")
        batch.drop_column("deleted_at")
        batch.drop_column("reference_missing")
