"""alerts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from holovitals_sync.models import types as hv_types

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALERT_KINDS = (
    "queue_depth",
    "job_failures",
    "job_slow",
    "subscription_disabled",
    "conflict_backlog",
)
# Only one open or acknowledged alert per (kind, subject); closed ones pile up freely.
ACTIVE_WHERE = "status <> 'closed'"


def _kind() -> sa.Enum:
    return sa.Enum(*ALERT_KINDS, name="alertkind", native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _kind(), nullable=False),
        sa.Column(
            "severity",
            sa.Enum("high", "medium", "low", name="severity", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("queue", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("subject", sqlmodel.AutoString(length=200), nullable=False),
        sa.Column("message", sqlmodel.AutoString(length=1000), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open", "acknowledged", "closed", name="alertstatus", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("raised_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("acknowledged_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("acknowledged_by", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("closed_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", hv_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index("ix_alert_status_raised", ["status", "raised_at"], unique=False)
        batch_op.create_index(
            "uq_alert_active_subject",
            ["kind", "subject"],
            unique=True,
            sqlite_where=sa.text(ACTIVE_WHERE),
            postgresql_where=sa.text(ACTIVE_WHERE),
        )

    op.create_table(
        "alert_threshold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _kind(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("queue", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "connection_id", "queue", name="uq_alert_threshold_target"),
    )


def downgrade() -> None:
    op.drop_table("alert_threshold")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index("uq_alert_active_subject")
        batch_op.drop_index("ix_alert_status_raised")
    op.drop_table("alert")
