"""A migrated database with one EHR connection, and a service bound to a session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from holovitals_sync import migrations
from holovitals_sync.db import create_db_engine
from holovitals_sync.models import EHRConnection, Vendor


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    migrations.upgrade(database_url)
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def add_connection(session: Session, name: str = "General Hospital") -> int:
    row = EHRConnection(name=name, vendor=Vendor.GENERIC, base_url="https://ehr.example/fhir")
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


@pytest.fixture
def connection_id(engine: sa.Engine) -> int:
    with Session(engine) as session:
        cid = add_connection(session)
        session.commit()
    return cid
