"""The Conflicts tab's read side, the modal's checks and its resolve, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import (
    Conflict,
    ConflictStatus,
    ResolutionStrategy,
    Role,
    Severity,
    SyncedRecord,
)
from holovitals_sync.services.conflicts import ConflictFilter, ResolutionError
from holovitals_sync.ui.state import conflicts as ui
from holovitals_sync.ui.views import conflicts as cv
from tests.factories import make_conflict, make_connection, make_user

S = ResolutionStrategy


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    migrations.upgrade(database_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield database_url
    get_engine().dispose()


def _world() -> tuple[int, int, list[int]]:
    """Two connections; three Basic conflicts at the first, one Observation at the second."""
    with session_scope() as session:
        first = make_connection(session, "First Hospital").id
        second = make_connection(session, "Second Clinic").id
        ids = [make_conflict(session, first, f"b-{n}") for n in range(3)]
        ids.append(make_conflict(session, second, "o-1", resource_type="Observation"))
    return first, second, ids


def test_conflicts_page_filters_and_pages_newest_first(db: str) -> None:
    first, second, ids = _world()
    with session_scope() as session:
        severity = session.get(Conflict, ids[0]).severity
        session.get(Conflict, ids[1]).status = ConflictStatus.RESOLVED
        page = cv.conflicts_page(
            session, filters=ConflictFilter(status=ConflictStatus.OPEN), limit=2
        )
        rest = cv.conflicts_page(
            session,
            filters=ConflictFilter(status=ConflictStatus.OPEN),
            after_id=page.next_cursor,
            limit=2,
        )
        at_first = cv.conflicts_page(session, filters=ConflictFilter(connection_id=first))
        observations = cv.conflicts_page(
            session, filters=ConflictFilter(resource_type="Observation", severity=severity)
        )
        types = cv.resource_types(session)
    assert [r["id"] for r in page.rows + rest.rows] == [str(ids[3]), str(ids[2]), str(ids[0])]
    assert rest.next_cursor is None
    assert {r["connection"] for r in at_first.rows} == {"First Hospital"}
    assert len(at_first.rows) == 3 and second
    (obs,) = observations.rows
    assert (obs["resource"], obs["fields"], obs["status"]) == (
        "Observation/o-1",
        "code.text",
        "open",
    )
    assert types == ["Basic", "Observation"]


def test_conflict_view_puts_base_local_and_remote_side_by_side(db: str) -> None:
    _, _, ids = _world()
    with session_scope() as session:
        view = cv.conflict_view(session, ids[0])
        assert cv.conflict_view(session, 10_000) is None
    (element,) = view["elements"]
    assert element == {
        "path": "code.text",
        "base": '"base"',
        "local": '"local"',
        "remote": '"remote"',
    }
    record = {r["element"]: r for r in view["record"]}
    assert record["code"]["differs"] == "yes" and record["id"]["differs"] == ""
    assert "meta" not in record  # versions are not content
    assert view["summary"]["resource"] == "Basic/b-0"
    assert cv.parse_manual(view["manual_template"]) == {"code.text": "local"}


def test_manual_values_are_checked_before_anything_is_stored(db: str) -> None:
    _, _, ids = _world()
    with pytest.raises(ResolutionError, match="not valid JSON"):
        cv.parse_manual("{code.text: ")
    with pytest.raises(ResolutionError, match="JSON object"):
        cv.parse_manual('"just text"')
    with session_scope() as session:
        with pytest.raises(ResolutionError, match="code.text: expected string"):
            cv.check_resolution(
                session, conflict_id=ids[0], strategy=S.MANUAL, values={"code.text": 42}
            )
        with pytest.raises(ResolutionError, match="no value given for: code.text"):
            cv.check_resolution(session, conflict_id=ids[0], strategy=S.MANUAL, values={})
        cv.check_resolution(
            session, conflict_id=ids[0], strategy=S.MANUAL, values={"code.text": "agreed"}
        )
        assert session.get(Conflict, ids[0]).status is ConflictStatus.OPEN


def test_the_modal_resolves_through_the_service_and_reports_problems(db: str) -> None:
    _, _, ids = _world()
    with session_scope() as session:
        nurse = make_user(session, "nurse", Role.OPERATOR)
    problem = ui._check(ids[0], S.MERGE, {"code.text": "sideways"}, None)
    assert problem == "a merge choice is 'local' or 'remote'"
    problem, queued = ui._resolve(
        nurse, ids[0], S.MANUAL, "agreed with ward", None, {"code.text": "agreed"}
    )
    assert problem is None
    again = ui._resolve(nurse, ids[0], S.USE_REMOTE, "twice", None, None)
    assert again == (f"conflict {ids[0]} is already resolved", False)
    assert ui._resolve(nurse, 10_000, S.USE_REMOTE, "gone", None, None) == (
        "that conflict no longer exists",
        False,
    )
    with session_scope() as session:
        conflict = session.get(Conflict, ids[0])
        # The toast says a write to the EHR is on its way exactly when one is owed.
        assert queued is (conflict.write_back_queued_at is not None)
        record = session.get(SyncedRecord, conflict.record_id)
        assert (conflict.status, conflict.reason, conflict.resolved_by) == (
            ConflictStatus.RESOLVED,
            "agreed with ward",
            "nurse",
        )
        assert record.local_body["code"] == {"text": "agreed"}
        open_page = cv.conflicts_page(session, filters=ConflictFilter(status=ConflictStatus.OPEN))
    assert str(ids[0]) not in [r["id"] for r in open_page.rows]  # it left the open list


def test_filters_from_the_tab_select_values(db: str) -> None:
    assert ui._filters("open", "all", "all", "all") == ConflictFilter(status=ConflictStatus.OPEN)
    assert ui._filters("all", "high", "3", "Patient") == ConflictFilter(
        severity=Severity.HIGH, connection_id=3, resource_type="Patient"
    )
