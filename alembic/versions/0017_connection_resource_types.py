"""ehr_connection.resource_types: the types a connection syncs ([]: all its server offers)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from holovitals_sync.models import types as hv_types

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ehr_connection") as batch:
        batch.add_column(
            sa.Column(
                "resource_types",
                hv_types.JSONType,
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("ehr_connection") as batch:
        batch.drop_column("resource_types")
