"""inbound_event.recheck: notifications whose focus is read after the sync (deletes)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 06:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_event") as batch:
        batch.add_column(
            sa.Column("recheck", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index("ix_inbound_job", "inbound_event", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_inbound_job", table_name="inbound_event")
    with op.batch_alter_table("inbound_event") as batch:
        batch.drop_column("recheck")
