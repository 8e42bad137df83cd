"""conflict policy

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 04:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from holovitals_sync.models import types as hv_types

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conflict_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("resource_type", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column(
            "strategy",
            sa.Enum(
                "use_local",
                "use_remote",
                "merge",
                "manual",
                "ignore",
                name="resolutionstrategy",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("updated_by", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", hv_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("connection_id", "resource_type", name="uq_conflict_policy_conn_type"),
    )


def downgrade() -> None:
    op.drop_table("conflict_policy")
