"""The Records page's state handlers, driven as one browser tab drives them, on SQLite and
PostgreSQL: the lists and their filters, a link's query, paging, a record beside its issues,
and the operator's local delete.

A tab is a fresh root state whose router carries the websocket handshake's Cookie header
with a real session (as in test_session_cookie.py); each handler's own function is called
on its substate, so `principal_for`, the services and the database are the real ones.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from reflex.state import State
from reflex_base.constants import RouteVar
from sqlmodel import select

import holovitals_sync.holovitals_sync  # noqa: F401 - registers every page and State of the app
from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import (
    AuditLog,
    ErrorSeverity,
    JobStatus,
    RecordError,
    Role,
    SyncedRecord,
    Vendor,
)
from holovitals_sync.services import auth
from holovitals_sync.ui.state.records import PAGE_SIZE, RecordsState, RecordState
from holovitals_sync.ui.state.session import SessionState
from holovitals_sync.ui.views import records as views
from tests.conftest import REDIS_TEST_URL
from tests.factories import PASSWORD, make_connection, make_job, make_user

OLD = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@dataclass
class World:
    cid: int = 0  # the connection the page shows
    other: int = 0  # a second connection, whose rows must never show
    epic: int = 0  # an Epic connection: no FHIR delete of its types
    job: int = 0  # a job that flagged p2 and o1
    later: int = 0  # a later job with one warning
    cookies: dict[Role, str] = field(default_factory=dict)


def _record(
    session: Any, cid: int, rtype: str, rid: str, patient: str | None = None, **state: Any
) -> None:
    body = {"resourceType": rtype, "id": rid, "status": "final"}
    if patient:
        body["subject"] = {"reference": f"Patient/{patient}"}
    session.add(
        SyncedRecord(
            connection_id=cid,
            resource_type=rtype,
            remote_id=rid,
            patient_ref=f"Patient/{patient}" if patient else None,
            remote_version="2",
            remote_body=body,
            **state,
        )
    )


def _error(
    session: Any,
    cid: int,
    job: int | None,
    rtype: str,
    rid: str,
    message: str,
    severity: ErrorSeverity = ErrorSeverity.ERROR,
    path: str | None = None,
) -> None:
    session.add(
        RecordError(
            connection_id=cid,
            job_id=job,
            resource_type=rtype,
            remote_id=rid,
            message=message,
            severity=severity,
            path=path,
        )
    )


@pytest.fixture
def world(database_url: str, monkeypatch: pytest.MonkeyPatch, redis_client) -> Iterator[World]:
    migrations.upgrade(database_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    get_settings.cache_clear()
    get_engine.cache_clear()
    w = World()
    with session_scope() as s:
        w.cid = make_connection(s, "A Hospital").id
        w.other = make_connection(s, "B Clinic").id
        w.epic = make_connection(s, "C Epic", vendor=Vendor.EPIC).id
        w.job = make_job(s, w.cid, JobStatus.COMPLETED).id
        w.later = make_job(s, w.cid, JobStatus.COMPLETED).id
        _record(s, w.cid, "Patient", "p1")
        _record(s, w.cid, "Patient", "p2", flagged_invalid=True)
        _record(s, w.cid, "Observation", "o1", "p1", reference_missing=True)
        _record(
            s,
            w.cid,
            "Observation",
            "o2",
            "p1",
            deleted=True,
            deleted_at=OLD,
            delete_reason="not returned by id sweep job 9",
        )
        _record(
            s,
            w.cid,
            "Observation",
            "o3",
            "p2",
            dirty=True,
            local_body={"resourceType": "Observation", "id": "o3", "status": "amended"},
        )
        _record(s, w.other, "Patient", "p1")
        _record(s, w.epic, "Observation", "e1")
        _error(
            s,
            w.cid,
            w.job,
            "Patient",
            "p2",
            "[required] Patient.name is required",
            path="Patient.name",
        )
        _error(s, w.cid, w.job, "Observation", "o1", "[reference] Patient/p1 is not held")
        _error(
            s,
            w.cid,
            w.later,
            "Observation",
            "o3",
            "[custom] heart rate: out of range",
            ErrorSeverity.WARNING,
            "valueQuantity.value",
        )
        _error(s, w.other, w.job, "Patient", "p1", "[required] elsewhere")
        for role in Role:
            make_user(s, role.value, role)
    for role in Role:
        with session_scope() as s:
            w.cookies[role], _user = auth.sign_in(
                s, username=role.value, password=PASSWORD, ip=None
            )
    yield w
    get_engine().dispose()


class Tab:
    """One browser tab of a signed-in user (or of nobody) on a page of the app."""

    def __init__(self, world: World, role: Role | None, url: str = "/records") -> None:
        self.root = State(_reflex_internal_init=True)
        cookie = f"hv_session={world.cookies[role]}" if role else ""
        event = {
            RouteVar.HEADERS: {"host": "localhost:8000", "cookie": cookie},
            RouteVar.ORIGIN: url,
            RouteVar.PATH: url.split("?")[0],
            RouteVar.CLIENT_IP: "127.0.0.1",
        }
        self.root.router_data = self.root._update_router_vars(event, {})

    def state(self, cls: type) -> Any:
        return self.root.get_substate(cls.get_full_name().split("."))

    def run(self, cls: type, name: str, *args: Any) -> list[Any]:
        """The handler's events (a generator's included) as the page would receive them."""
        result = getattr(cls, name).fn(self.state(cls), *args)

        async def drain() -> list[Any]:
            found = await result if inspect.isawaitable(result) else result
            if inspect.isasyncgen(found):
                return [e async for e in found if e is not None]
            return [found] if found is not None else []

        return asyncio.run(drain())


def _ids(rows: list[dict[str, str]]) -> list[str]:
    return [r["remote_id"] for r in rows]


def test_records_of_one_connection_narrowed_by_each_filter(world: World) -> None:
    tab = Tab(world, Role.VIEWER)
    assert tab.run(RecordsState, "load") == []
    page = tab.state(RecordsState)
    # The first connection by name; every record of it, none of the other's, in id order.
    assert page.connection == str(world.cid) and page.view == "records"
    assert _ids(page.rows) == ["p1", "p2", "o1", "o2", "o3"]
    assert page.resource_types == ["any", "Observation", "Patient"]
    assert [c["name"] for c in page.connections] == ["A Hospital", "B Clinic", "C Epic"]

    tab.run(RecordsState, "set_filter", "invalid", "flagged")
    assert _ids(page.rows) == ["p2", "o1"]  # invalid by content, or by a patient not held
    assert page.rows[0]["invalid"] == "yes" and page.rows[1]["reference_missing"] == "yes"
    tab.run(RecordsState, "set_filter", "invalid", "valid")
    assert _ids(page.rows) == ["p1", "o2", "o3"]
    tab.run(RecordsState, "set_filter", "resource_type", "Observation")
    tab.run(RecordsState, "set_filter", "deleted", "deleted")
    assert _ids(page.rows) == ["o2"] and page.rows[0]["deleted"] == "yes"
    tab.run(RecordsState, "clear")
    tab.run(RecordsState, "set_filter", "dirty", "pending")
    assert _ids(page.rows) == ["o3"] and page.rows[0]["dirty"] == "yes"

    tab.run(RecordsState, "clear")
    tab.run(RecordsState, "apply", {"patient": "p1"})  # the patient and its records
    assert _ids(page.rows) == ["p1", "o1", "o2"]
    tab.run(RecordsState, "apply", {"patient": "", "changed_since": "2999-01-01T00:00"})
    assert page.rows == [] and page.filter_errors == {}
    tab.run(RecordsState, "apply", {"changed_since": "yesterday"})
    assert page.filter_errors == {"changed_since": "a date (and time) as YYYY-MM-DD HH:MM, in UTC"}

    tab.run(RecordsState, "clear")
    tab.run(RecordsState, "set_connection", str(world.other))
    assert _ids(page.rows) == ["p1"] and page.resource_types == ["any", "Patient"]


def test_errors_list_filters_and_its_csv_link_names_the_same_filters(world: World) -> None:
    tab = Tab(world, Role.VIEWER)
    tab.run(RecordsState, "load")
    tab.run(RecordsState, "set_view", "errors")
    page = tab.state(RecordsState)
    assert [e["remote_id"] for e in page.errors] == ["o3", "o1", "p2"]  # newest first
    tab.run(RecordsState, "set_filter", "severity", "warning")
    assert [e["message"] for e in page.errors] == ["[custom] heart rate: out of range"]
    tab.run(RecordsState, "set_filter", "severity", "any")
    tab.run(RecordsState, "set_filter", "layer", "required")
    assert [e["remote_id"] for e in page.errors] == ["p2"]
    assert page.errors[0]["path"] == "Patient.name" and page.errors[0]["job"] == str(world.job)
    tab.run(RecordsState, "apply", {"job": str(world.job)})
    query = parse_qs(urlsplit(page.csv_path).query)
    assert urlsplit(page.csv_path).path == "/api/records/errors.csv"
    assert query == {
        "connection_id": [str(world.cid)],
        "job_id": [str(world.job)],
        "layer": ["required"],
    }
    tab.run(RecordsState, "set_filter", "layer", "any")
    tab.run(RecordsState, "apply", {"job": "", "rule": "heart rate"})
    assert [e["remote_id"] for e in page.errors] == ["o3"]
    assert parse_qs(urlsplit(page.csv_path).query)["rule"] == ["heart rate"]
    tab.run(RecordsState, "apply", {"job": "forty-two"})
    assert page.filter_errors == {"job": "a job number, such as 42"}


def test_a_job_link_opens_its_errors_and_later_loads_keep_what_was_chosen(world: World) -> None:
    url = f"/records?connection={world.cid}&view=errors&job={world.later}"
    tab = Tab(world, Role.VIEWER, url)
    tab.run(RecordsState, "load")
    page = tab.state(RecordsState)
    assert (page.view, page.filters["job"]) == ("errors", str(world.later))
    assert [e["remote_id"] for e in page.errors] == ["o3"]
    form_key = page.form_key
    tab.run(RecordsState, "apply", {"job": ""})  # the engineer widens the list
    tab.run(RecordsState, "load")  # the same address loads again (a reconnect)
    assert page.filters["job"] == "" and len(page.errors) == 3 and page.form_key == form_key


def test_keyset_pages_forward_and_back(world: World) -> None:
    with session_scope() as s:
        for n in range(PAGE_SIZE + 3):
            _record(s, world.cid, "Condition", f"c{n:02d}", "p1")
            _error(s, world.cid, world.job, "Condition", f"c{n:02d}", "[required] code")
    tab = Tab(world, Role.VIEWER)
    tab.run(RecordsState, "load")
    tab.run(RecordsState, "set_filter", "resource_type", "Condition")
    page = tab.state(RecordsState)
    first = _ids(page.rows)
    assert first == [f"c{n:02d}" for n in range(PAGE_SIZE)] and page.next_cursor
    tab.run(RecordsState, "page", True)
    assert _ids(page.rows) == [f"c{n:02d}" for n in range(PAGE_SIZE, PAGE_SIZE + 3)]
    assert page.next_cursor == 0
    tab.run(RecordsState, "page", False)
    assert _ids(page.rows) == first and page.back == []

    tab.run(RecordsState, "set_view", "errors")
    tab.run(RecordsState, "set_filter", "error_type", "Condition")
    newest = [e["remote_id"] for e in page.errors]
    assert newest[0] == f"c{PAGE_SIZE + 2:02d}" and len(newest) == PAGE_SIZE
    tab.run(RecordsState, "errors_page", True)
    assert [e["remote_id"] for e in page.errors] == ["c02", "c01", "c00"]
    tab.run(RecordsState, "errors_page", False)
    assert [e["remote_id"] for e in page.errors] == newest


def test_a_flagged_record_opens_with_its_body_beside_its_issues(world: World) -> None:
    tab = Tab(world, Role.VIEWER)
    assert tab.run(RecordState, "open_record", str(world.cid), "Patient", "p2") == []
    dialog = tab.state(RecordState)
    assert dialog.open and '"id": "p2"' in dialog.body and dialog.remote_body == ""
    assert dialog.summary["invalid"] == "yes"
    assert [(i["message"], i["path"]) for i in dialog.issues] == [
        ("[required] Patient.name is required", "Patient.name")
    ]
    # A local change: HoloVitals' copy, and the EHR's beside it.
    tab.run(RecordState, "open_record", str(world.cid), "Observation", "o3")
    assert '"amended"' in dialog.body and '"final"' in dialog.remote_body
    # A tombstone says when and why.
    tab.run(RecordState, "open_record", str(world.cid), "Observation", "o2")
    s = dialog.summary
    assert (s["deleted"], s["deleted_at"], s["delete_reason"]) == (
        "yes",
        "2026-01-05 08:00",
        "not returned by id sweep job 9",
    )
    assert s["delete_refusal"] == "a tombstone: the EHR no longer has this record"
    # Another connection's record is not this one's.
    shown = tab.run(RecordState, "open_record", str(world.cid), "Observation", "e1")
    assert "not held for this connection" in str(shown[0])


def test_an_operator_asks_for_a_delete_a_viewer_cannot(world: World) -> None:
    viewer = Tab(world, Role.VIEWER)
    viewer.run(RecordState, "open_record", str(world.cid), "Patient", "p1")
    refused = viewer.run(RecordState, "delete_local")
    assert "this needs the operator role" in str(refused).lower()

    operator = Tab(world, Role.OPERATOR)
    operator.run(RecordState, "open_record", str(world.cid), "Patient", "p1")
    dialog = operator.state(RecordState)
    assert dialog.summary["delete_refusal"] == ""
    # Someone changes the copy after it was opened: the delete is refused, nothing stored.
    with session_scope() as s:
        row = s.exec(
            select(SyncedRecord).where(
                SyncedRecord.connection_id == world.cid, SyncedRecord.remote_id == "p1"
            )
        ).one()
        row.local_body = {"resourceType": "Patient", "id": "p1", "active": False}
        row.dirty = True
    operator.run(RecordState, "delete_local")
    assert dialog.error.startswith("The record changed since it was opened")
    assert dialog.summary["local_deleted"] == ""
    # Read again (the handler did), the delete goes through.
    events = operator.run(RecordState, "delete_local")
    assert dialog.error == "" and dialog.summary["local_deleted"] == "yes"
    assert dialog.summary["local_deleted_by"] == "operator"
    assert any("marked for deletion" in str(e) for e in events)
    with session_scope() as s:
        row = s.exec(
            select(SyncedRecord).where(
                SyncedRecord.connection_id == world.cid, SyncedRecord.remote_id == "p1"
            )
        ).one()
        assert (row.local_deleted, row.dirty) == (True, True)
        actions = s.exec(select(AuditLog.action).where(AuditLog.actor == "operator")).all()
        assert "record.delete_local" in actions

    # A vendor that takes no FHIR delete: the dialog says why instead of offering one.
    operator.run(RecordState, "open_record", str(world.epic), "Observation", "e1")
    assert dialog.summary["delete_refusal"] != ""


def test_nobody_is_sent_to_sign_in(world: World) -> None:
    tab = Tab(world, None)
    shown = tab.run(RecordsState, "load")
    assert "/signin" in str(shown[0]) and tab.state(RecordsState).rows == []
    assert tab.state(SessionState).role == ""


def test_resource_types_walk_the_index_per_connection(world: World) -> None:
    with session_scope() as s:
        assert views.resource_types(s, world.cid) == ["Observation", "Patient"]
        assert views.resource_types(s, world.epic) == ["Observation"]
        assert views.resource_types(s, 10_000) == []
