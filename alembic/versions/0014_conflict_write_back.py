"""conflict.write_back_queued_at: a resolution's write to the EHR, queued on the conflicts queue

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 12:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from holovitals_sync.models import types as hv_types

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conflict") as batch:
        batch.add_column(sa.Column("write_back_queued_at", hv_types.UTCDateTime(), nullable=True))
    op.create_index("ix_conflict_write_back", "conflict", ["write_back_queued_at"])


def downgrade() -> None:
    op.drop_index("ix_conflict_write_back", table_name="conflict")
    with op.batch_alter_table("conflict") as batch:
        batch.drop_column("write_back_queued_at")
