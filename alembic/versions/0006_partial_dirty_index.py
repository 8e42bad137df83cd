"""synced_record: index only the records with local changes (a partial index)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 12:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Dirty records are few (local changes not yet written back) and are looked up by
# connection in id order (outbound writes, conflict detection after a batch). Indexing
# every record by (connection, dirty) cost each imported record one more index insert.
# SQLite uses a partial index only for a query term written the same way: SQLAlchemy
# renders `dirty == true()` there as `dirty = 1`.
_SQLITE_DIRTY, _PG_DIRTY = sa.text("dirty = 1"), sa.text("dirty")


def upgrade() -> None:
    with op.batch_alter_table("synced_record") as batch:
        batch.drop_index("ix_record_connection_dirty")
    op.create_index(
        "ix_record_dirty",
        "synced_record",
        ["connection_id", "id"],
        sqlite_where=_SQLITE_DIRTY,
        postgresql_where=_PG_DIRTY,
    )


def downgrade() -> None:
    op.drop_index("ix_record_dirty", table_name="synced_record")
    with op.batch_alter_table("synced_record") as batch:
        batch.create_index("ix_record_connection_dirty", ["connection_id", "dirty"], unique=False)
