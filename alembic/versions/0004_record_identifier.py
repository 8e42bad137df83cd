"""record identifiers: an index of Patient identifiers for duplicate detection

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_CHUNK = 1000


def upgrade() -> None:
    op.create_table(
        "record_identifier",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("resource_type", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column("system", sqlmodel.AutoString(length=500), nullable=False),
        sa.Column("value", sqlmodel.AutoString(length=500), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["record_id"], ["synced_record.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_id", "system", "value", name="uq_record_identifier"),
    )
    op.create_index(
        "ix_record_identifier_lookup",
        "record_identifier",
        ["connection_id", "resource_type", "system", "value"],
        unique=False,
    )
    _backfill()


def _backfill() -> None:
    """Index the identifiers of the Patients stored before this table existed."""
    from holovitals_sync.services.conflicts.duplicates import DUPLICATE_TYPES, _identities

    bind = op.get_bind()
    records = sa.table("synced_record", sa.column("id"), sa.column("connection_id"),
                       sa.column("resource_type"), sa.column("remote_body", sa.JSON),
                       sa.column("deleted"))  # fmt: skip
    target = sa.table("record_identifier", sa.column("record_id"), sa.column("connection_id"),
                      sa.column("resource_type"), sa.column("system"), sa.column("value"))  # fmt: skip
    last = 0
    while True:
        rows = bind.execute(
            sa.select(records.c.id, records.c.connection_id, records.c.resource_type,
                      records.c.remote_body)
            .where(records.c.resource_type.in_(sorted(DUPLICATE_TYPES)), records.c.id > last)
            .order_by(records.c.id).limit(BACKFILL_CHUNK)
        ).all()  # fmt: skip
        if not rows:
            return
        values = [
            {
                "record_id": rid,
                "connection_id": cid,
                "resource_type": rtype,
                "system": system,
                "value": value,
            }
            for rid, cid, rtype, body in rows
            for system, value in _identities(body)
        ]
        if values:
            bind.execute(target.insert(), values)
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_record_identifier_lookup", table_name="record_identifier")
    op.drop_table("record_identifier")
