"""hl7_feed, hl7_message, patient_merge: HL7 v2 ADT feeds over MLLP

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from holovitals_sync.models import types as hv_types

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS = sa.Enum(
    "received",
    "processed",
    "duplicate",
    "rejected",
    "failed",
    name="inboundstatus",
    native_enum=False,
    create_constraint=False,
    length=32,
)


def upgrade() -> None:
    op.create_table(
        "hl7_feed",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sending_application", sqlmodel.AutoString(length=180), nullable=False),
        sa.Column("sending_facility", sqlmodel.AutoString(length=180), nullable=False),
        sa.Column("identifier_systems", hv_types.JSONType, nullable=False),
        sa.Column(
            "connection_id",
            sa.Integer(),
            sa.ForeignKey("ehr_connection.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", hv_types.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("sending_application", "sending_facility", name="uq_hl7_feed_sender"),
    )
    op.create_index("ix_hl7_feed_connection_id", "hl7_feed", ["connection_id"])
    op.create_table(
        "hl7_message",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "connection_id",
            sa.Integer(),
            sa.ForeignKey("ehr_connection.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sender", sqlmodel.AutoString(length=400), nullable=False),
        sa.Column("control_id", sqlmodel.AutoString(length=200), nullable=False),
        sa.Column("message_type", sqlmodel.AutoString(length=16), nullable=False),
        sa.Column("body_encrypted", sqlmodel.AutoString(), nullable=False),
        sa.Column("status", STATUS, nullable=False),
        sa.Column("outcome", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("patient_id", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column(
            "job_id", sa.Integer(), sa.ForeignKey("sync_job.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("received_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("processed_at", hv_types.UTCDateTime(), nullable=True),
        sa.UniqueConstraint("connection_id", "sender", "control_id", name="uq_hl7_message_key"),
    )
    op.create_index(
        "ix_hl7_message_conn_status", "hl7_message", ["connection_id", "status", "received_at"]
    )
    op.create_table(
        "patient_merge",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "connection_id",
            sa.Integer(),
            sa.ForeignKey("ehr_connection.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("merged_patient_id", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column("survivor_patient_id", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column(
            "message_id",
            sa.Integer(),
            sa.ForeignKey("hl7_message.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("merged_at", hv_types.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("connection_id", "merged_patient_id", name="uq_patient_merge"),
    )


def downgrade() -> None:
    op.drop_table("patient_merge")
    op.drop_index("ix_hl7_message_conn_status", table_name="hl7_message")
    op.drop_table("hl7_message")
    op.drop_index("ix_hl7_feed_connection_id", table_name="hl7_feed")
    op.drop_table("hl7_feed")
