"""Page size per connection (asked and learned), parallel streams, child jobs of a full sync

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from holovitals_sync.models import types as hv_types

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ehr_connection") as batch:
        batch.add_column(sa.Column("page_size", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("stream_limit", sa.Integer(), nullable=False, server_default="4")
        )
        batch.add_column(sa.Column("page_size_learned", sa.Integer(), nullable=True))
    with op.batch_alter_table("sync_job") as batch:
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("part", hv_types.JSONType, nullable=True))
        batch.create_foreign_key(
            "fk_sync_job_parent", "sync_job", ["parent_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_sync_job_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("sync_job") as batch:
        batch.drop_index("ix_sync_job_parent_id")
        batch.drop_constraint("fk_sync_job_parent", type_="foreignkey")
        batch.drop_column("part")
        batch.drop_column("parent_id")
    with op.batch_alter_table("ehr_connection") as batch:
        batch.drop_column("page_size_learned")
        batch.drop_column("stream_limit")
        batch.drop_column("page_size")
