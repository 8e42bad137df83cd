"""ehr_connection.full_sync_via: a full sync by Bulk Data export (where offered) or by search

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ehr_connection") as batch:
        batch.add_column(
            sa.Column(
                "full_sync_via", sa.String(length=16), nullable=False, server_default="export"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("ehr_connection") as batch:
        batch.drop_column("full_sync_via")
