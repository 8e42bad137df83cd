"""Large pages, and what the server honours: a connection asks for big pages (1,000 for a
generic server), and a server that quietly serves fewer, or refuses the size, is taken at
its word and remembered for the connection. Real workers, the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import func, select

from holovitals_sync.db import session_scope
from holovitals_sync.models import EHRConnection, JobType, SyncedRecord
from holovitals_sync.sandbox.server import SandboxServer
from tests.integration.sync.conftest import start, wait_status


@pytest.fixture
def capped(ehr: SandboxServer) -> Iterator[SandboxServer]:
    yield ehr
    ehr.configure(max_page_size=1000, refuse_count_over_max=False)


def _counts_asked(ehr: SandboxServer, rtype: str) -> list[int]:
    """`_count` of every first-page search of the type, in order."""
    asked = []
    for call in ehr.state.stats.recent:
        if call["path"].endswith(f"/fhir/{rtype}") and "_count=" in call["query"]:
            pairs = dict(p.split("=", 1) for p in call["query"].split("&") if "=" in p)
            asked.append(int(pairs["_count"]))
    return asked


def _stored(connection_id: int, rtype: str) -> int:
    with session_scope() as session:
        return session.exec(
            select(func.count())
            .select_from(SyncedRecord)
            .where(SyncedRecord.connection_id == connection_id, SyncedRecord.resource_type == rtype)
        ).one()


def _learned(connection_id: int) -> int | None:
    with session_scope() as session:
        return session.get(EHRConnection, connection_id).page_size_learned


def _sync(connection_id: int, rtype: str) -> None:
    job = wait_status(
        start(connection_id, JobType.RESOURCE, resource_type=rtype), "completed", "failed"
    )
    assert job.status.value == "completed", job.last_error


def test_a_quiet_cap_is_noticed_and_remembered(connection, capped, workers):
    capped.configure(max_page_size=60)  # serves 60 whatever is asked, and says nothing
    workers.start(1)
    _sync(connection.id, "Observation")
    expected = len(capped.state.store.candidates("Observation"))
    assert expected > 60 and _stored(connection.id, "Observation") == expected
    assert _learned(connection.id) == 60
    assert _counts_asked(capped, "Observation") == [1000]

    capped.state.stats.reset()
    _sync(connection.id, "Condition")  # the next job asks for what the server honours
    assert _counts_asked(capped, "Condition") == [60]


def test_a_refused_page_size_is_halved_until_taken(connection, capped, workers):
    capped.configure(max_page_size=300, refuse_count_over_max=True)
    workers.start(1)
    _sync(connection.id, "Observation")
    assert _counts_asked(capped, "Observation") == [1000, 500, 250]
    assert _learned(connection.id) == 250
    assert _stored(connection.id, "Observation") == len(
        capped.state.store.candidates("Observation")
    )


def test_an_administrators_page_size_is_asked_and_a_change_forgets_what_was_learned(
    connection, capped, workers
):
    from holovitals_sync.services.audit import Actor
    from holovitals_sync.services.connections import ConnectionPatch, update_connection

    with session_scope() as session:
        row = session.get(EHRConnection, connection.id)
        row.page_size_learned = 60
        update_connection(
            session, row=row, patch=ConnectionPatch(page_size=200), actor=Actor.system("tests")
        )
    workers.start(1)
    _sync(connection.id, "Observation")
    assert _counts_asked(capped, "Observation") == [200]
    assert _learned(connection.id) is None
