"""custom validation rules per connection; clinical content opt-in per subscription

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from holovitals_sync.models import types as hv_types

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing connections start with no custom rules: an empty JSON list.
    with op.batch_alter_table("ehr_connection") as batch:
        batch.add_column(
            sa.Column(
                "validation_rules",
                hv_types.JSONType,
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
    # Deliveries carry ids only unless a subscription opts in to the resource itself.
    with op.batch_alter_table("webhook_subscription") as batch:
        batch.add_column(
            sa.Column("include_content", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscription") as batch:
        batch.drop_column("include_content")
    with op.batch_alter_table("ehr_connection") as batch:
        batch.drop_column("validation_rules")
