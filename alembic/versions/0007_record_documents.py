"""synced_record: bodies as PostgreSQL `json`; last_job_id a plain column

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each imported record paid the server for decomposing its body into `jsonb` and for a
# foreign-key look-up and lock of the job row: about a third of its insert (see
# models.record and models.types). SQLite stores JSON as text either way; its foreign key
# (unnamed there) goes through a batch copy of the table, named by this convention.
_BODIES = ("base_body", "local_body", "remote_body")
_CONVENTION = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
_SQLITE_FK = "fk_synced_record_last_job_id_sync_job"
_PG_FK = "synced_record_last_job_id_fkey"


def _bodies_as(kind: type[sa.types.TypeEngine], name: str) -> None:
    for column in _BODIES:
        op.alter_column(
            "synced_record",
            column,
            type_=kind(none_as_null=True),
            postgresql_using=f"{column}::{name}",
        )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _bodies_as(postgresql.JSON, "json")
        op.drop_constraint(_PG_FK, "synced_record", type_="foreignkey")
        return
    with op.batch_alter_table("synced_record", naming_convention=_CONVENTION) as batch:
        batch.drop_constraint(_SQLITE_FK, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _bodies_as(postgresql.JSONB, "jsonb")
        op.create_foreign_key(
            _PG_FK, "synced_record", "sync_job", ["last_job_id"], ["id"], ondelete="SET NULL"
        )
        return
    with op.batch_alter_table("synced_record") as batch:
        batch.create_foreign_key(
            _SQLITE_FK, "sync_job", ["last_job_id"], ["id"], ondelete="SET NULL"
        )
