"""audit_anchor: the chain's latest position, kept apart from the log and keyed

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from holovitals_sync.models import types as hv_types

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    anchor = op.create_table(
        "audit_anchor",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        # Entries from this position on are keyed (HMAC): older ones were plain SHA-256.
        sa.Column("keyed_from", sa.Integer(), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=True),
        sa.Column("updated_at", hv_types.UTCDateTime(), nullable=True),
    )
    last = (
        op.get_bind()
        .execute(sa.text("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1"))
        .first()
    )
    seq, digest = (int(last[0]), str(last[1])) if last else (0, GENESIS)
    op.bulk_insert(
        anchor, [{"id": 1, "seq": seq, "entry_hash": digest, "keyed_from": seq + 1, "mac": None}]
    )


def downgrade() -> None:
    op.drop_table("audit_anchor")
