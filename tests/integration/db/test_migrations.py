"""The Alembic head and the SQLModel tables agree, on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import holovitals_sync.models  # noqa: F401
from holovitals_sync import migrations
from holovitals_sync.db import create_db_engine


def _diff(url: str) -> list:
    engine = create_db_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    return diff


def _tables(url: str) -> set[str]:
    engine = create_db_engine(url)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names


def test_head_matches_models(database_url: str) -> None:
    migrations.upgrade(database_url)
    assert _diff(database_url) == []


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    migrations.upgrade(database_url)
    assert set(SQLModel.metadata.tables) <= _tables(database_url)
    migrations.downgrade(database_url, "base")
    assert _tables(database_url) <= {"alembic_version"}
    migrations.upgrade(database_url)
    assert _diff(database_url) == []


def test_unique_record_per_remote_id(database_url: str) -> None:
    """Two workers racing on one remote resource cannot create two rows."""
    from sqlmodel import Session

    from holovitals_sync.models import EHRConnection, SyncedRecord, Vendor

    migrations.upgrade(database_url)
    engine = create_db_engine(database_url)
    with Session(engine) as session:
        conn = EHRConnection(name="c", vendor=Vendor.GENERIC, base_url="http://x")
        session.add(conn)
        session.commit()
        for _ in range(2):
            record = SyncedRecord(connection_id=conn.id, resource_type="Patient", remote_id="p1")
            session.add(record)
        try:
            session.commit()
            raised = False
        except sa.exc.IntegrityError:
            raised = True
    engine.dispose()
    assert raised
