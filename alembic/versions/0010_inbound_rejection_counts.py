"""inbound_rejection: refused inbound requests counted, not stored one row each

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from holovitals_sync.models import types as hv_types

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_rejection",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("connection_id", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("first_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("last_at", hv_types.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("connection_id", "status", "reason", name="uq_inbound_rejection"),
    )
    # What was stored row by row becomes counts; the rows go.
    op.execute(
        "INSERT INTO inbound_rejection (connection_id, status, reason, count, first_at, last_at) "
        "SELECT COALESCE(connection_id, 0), status, COALESCE(rejection_reason, 'unknown'), "
        "COUNT(*), MIN(received_at), MAX(received_at) FROM inbound_event "
        "WHERE status IN ('rejected', 'duplicate') "
        "GROUP BY COALESCE(connection_id, 0), status, COALESCE(rejection_reason, 'unknown')"
    )
    op.execute("DELETE FROM inbound_event WHERE status IN ('rejected', 'duplicate')")


def downgrade() -> None:
    op.drop_table("inbound_rejection")
