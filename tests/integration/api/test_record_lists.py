"""A connection's records and record errors over the API, on SQLite and PostgreSQL: every
filter, the keyset cursor, and the errors' CSV file for a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from holovitals_sync.api import create_api
from holovitals_sync.db import session_scope
from holovitals_sync.models import Conflict, ErrorSeverity, RecordError, Role, SyncedRecord
from holovitals_sync.services import record_lists
from tests.conftest import REDIS_TEST_URL
from tests.factories import make_conflict, make_connection, make_job, make_token, make_user
from tests.integration.api.conftest import ApiWorld
from tests.process_env import holovitals_env

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
ERRORS = "/api/records/errors"


@pytest.fixture
def db_world(
    database_url: str, redis_client, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ApiWorld]:
    """The API on a migrated SQLite or PostgreSQL database, one token per role."""
    with holovitals_env(monkeypatch, database_url, REDIS_TEST_URL):
        with session_scope() as session:
            tokens = {
                role.value: make_token(session, make_user(session, role.value, role))
                for role in Role
            }
        with TestClient(create_api()) as client:
            yield ApiWorld(client, tokens)


def _body(rtype: str, rid: str) -> dict:
    return {"resourceType": rtype, "id": rid}


def _records() -> tuple[int, dict[str, int]]:
    """A connection holding one record of each state; another connection's record beside."""
    with session_scope() as session:
        cid, other = make_connection(session, "A").id, make_connection(session, "B").id
        rows = {
            "p1": SyncedRecord(
                connection_id=cid,
                resource_type="Patient",
                remote_id="p1",
                remote_body=_body("Patient", "p1"),
                remote_version="3",
                local_body={**_body("Patient", "p1"), "gender": "other"},
                dirty=True,
            ),
            "o1": SyncedRecord(
                connection_id=cid,
                resource_type="Observation",
                remote_id="o1",
                patient_ref="Patient/p1",
                remote_body=_body("Observation", "o1"),
                updated_at=LONG_AGO,
            ),
            "o2": SyncedRecord(
                connection_id=cid,
                resource_type="Observation",
                remote_id="o2",
                patient_ref="Patient/p2",
                flagged_invalid=True,
                remote_body=_body("Observation", "o2"),
                updated_at=LONG_AGO,
            ),
            "o3": SyncedRecord(
                connection_id=cid,
                resource_type="Observation",
                remote_id="o3",
                patient_ref="Patient/p9",
                reference_missing=True,
                remote_body=_body("Observation", "o3"),
            ),
            "pr1": SyncedRecord(
                connection_id=cid,
                resource_type="Practitioner",
                remote_id="pr1",
                remote_body=_body("Practitioner", "pr1"),
                updated_at=LONG_AGO,
            ),
            "org1": SyncedRecord(
                connection_id=cid,
                resource_type="Organization",
                remote_id="org1",
                remote_body=_body("Organization", "org1"),
                deleted=True,
                deleted_at=LONG_AGO,
                delete_reason="not returned by the complete full sync 1",
            ),
            "x1": SyncedRecord(
                connection_id=other,
                resource_type="Patient",
                remote_id="p1",
                remote_body=_body("Patient", "p1"),
            ),
        }
        for row in rows.values():
            session.add(row)
            session.flush()
        # A dirty Basic record held by an open conflict.
        conflict = session.get(Conflict, make_conflict(session, cid))
        ids = {name: int(row.id) for name, row in rows.items()}
        ids["basic"] = conflict.record_id
    return cid, ids


def _ids(world: ApiWorld, cid: int, **params) -> list[int]:
    got = world.client.get(
        "/api/records", params={"connection_id": cid, **params}, headers=world.headers("viewer")
    )
    assert got.status_code == 200, got.text
    return [item["id"] for item in got.json()["items"]]


def test_records_of_a_connection_with_each_filter(db_world):
    cid, ids = _records()
    world = db_world
    everything = [ids[n] for n in ("p1", "o1", "o2", "o3", "pr1", "org1", "basic")]
    assert _ids(world, cid) == everything  # in id order; the other connection's p1 apart
    assert _ids(world, cid, patient="p1") == [ids["p1"], ids["o1"]]
    assert _ids(world, cid, patient="Patient/p1") == [ids["p1"], ids["o1"]]
    assert _ids(world, cid, resource_type="Observation") == [ids["o1"], ids["o2"], ids["o3"]]
    # Records without a patient are reachable.
    assert _ids(world, cid, resource_type="Practitioner") == [ids["pr1"]]
    assert _ids(world, cid, invalid="true") == [ids["o2"], ids["o3"]]
    assert _ids(world, cid, invalid="false") == [
        ids[n] for n in ("p1", "o1", "pr1", "org1", "basic")
    ]
    assert _ids(world, cid, dirty="true") == [ids["p1"], ids["basic"]]
    assert ids["p1"] not in _ids(world, cid, dirty="false")
    assert _ids(world, cid, deleted="true") == [ids["org1"]]
    assert ids["org1"] not in _ids(world, cid, deleted="false")
    recent = [ids[n] for n in ("p1", "o3", "org1", "basic")]
    since = datetime.now(UTC) - timedelta(hours=1)
    assert _ids(world, cid, changed_since=since.isoformat()) == recent
    # No offset means UTC; another offset names the same instant; the bound is inclusive.
    assert _ids(world, cid, changed_since=since.replace(tzinfo=None).isoformat()) == recent
    india = timezone(timedelta(hours=5, minutes=30))
    assert _ids(world, cid, changed_since=since.astimezone(india).isoformat()) == recent
    assert _ids(world, cid, changed_since="2020-01-01T01:00:00+01:00") == everything
    assert _ids(world, cid, changed_since="2020-01-01T00:00:01Z") == recent
    assert _ids(world, cid, resource_type="Observation", invalid="true", patient="p2") == [
        ids["o2"]
    ]  # filters combine


def test_record_items_carry_ids_versions_state_and_the_holovitals_copy(db_world):
    cid, ids = _records()
    world = db_world
    items = {
        i["id"]: i
        for i in world.client.get(
            "/api/records", params={"connection_id": cid}, headers=world.headers("viewer")
        ).json()["items"]
    }
    patient = items[ids["p1"]]
    detail = world.client.get(f"/api/records/{cid}/Patient/p1", headers=world.headers("viewer"))
    assert patient["local_version"] == detail.headers["ETag"]
    assert (patient["remote_version"], patient["dirty"], patient["body"]["gender"]) == (
        "3",
        True,
        "other",
    )  # the HoloVitals copy, not the EHR's
    assert (patient["connection_id"], patient["resource_type"], patient["remote_id"]) == (
        cid,
        "Patient",
        "p1",
    )
    org = items[ids["org1"]]
    assert (org["deleted"], org["delete_reason"]) == (
        True,
        "not returned by the complete full sync 1",
    )
    assert datetime.fromisoformat(org["deleted_at"]) == LONG_AGO
    assert items[ids["o3"]]["reference_missing"] and not items[ids["o3"]]["flagged_invalid"]
    assert items[ids["basic"]]["open_conflicts"] == 1 and items[ids["basic"]]["conflict_pending"]
    assert {i["open_conflicts"] for k, i in items.items() if k != ids["basic"]} == {0}
    assert all(i["local_deleted"] is False for i in items.values())


def test_the_cursor_pages_through_every_record_once(db_world):
    cid, ids = _records()
    world = db_world
    seen, cursor, pages = [], None, 0
    while True:
        params = {"connection_id": cid, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = world.client.get(
            "/api/records", params=params, headers=world.headers("viewer")
        ).json()
        pages += 1
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor == seen[-1]
    assert seen == _ids(world, cid) and len(set(seen)) == 7 and pages == 4
    # The last page is exactly full: no empty page after it.
    assert (
        world.client.get(
            "/api/records",
            params={"connection_id": cid, "limit": 7},
            headers=world.headers("viewer"),
        ).json()["next_cursor"]
        is None
    )
    filtered = world.client.get(
        "/api/records",
        params={
            "connection_id": cid,
            "resource_type": "Observation",
            "limit": 1,
            "cursor": ids["o1"],
        },
        headers=world.headers("viewer"),
    ).json()
    assert ([i["id"] for i in filtered["items"]], filtered["next_cursor"]) == (
        [ids["o2"]],
        ids["o2"],
    )
    for bad in ({"limit": 0}, {"limit": 501}, {"cursor": -1}, {"changed_since": "yesterday"}):
        refused = world.client.get(
            "/api/records", params={"connection_id": cid, **bad}, headers=world.headers("viewer")
        )
        assert refused.status_code == 422, bad
    missing = world.client.get(
        "/api/records", params={"connection_id": 999_999}, headers=world.headers("viewer")
    )
    assert missing.status_code == 404


# ---- record errors ------------------------------------------------------------------------


def _errors() -> tuple[int, int, int, list[int]]:
    """Errors of two jobs of one connection (oldest first), and one of another connection."""
    with session_scope() as session:
        cid, other = make_connection(session, "A").id, make_connection(session, "B").id
        first, second = make_job(session, cid).id, make_job(session, cid).id
        warn = ErrorSeverity.WARNING
        rows = [
            RecordError(
                job_id=first,
                connection_id=cid,
                resource_type="Patient",
                remote_id="p1",
                path="gender",
                message="[required] gender is missing",
            ),
            RecordError(
                job_id=first,
                connection_id=cid,
                resource_type="Patient",
                remote_id="p1",
                path="identifier",
                message="[custom] mrn_format: value does not match the required pattern",
            ),
            RecordError(
                job_id=first,
                connection_id=cid,
                resource_type="Observation",
                remote_id="o1",
                path="valueQuantity.value",
                message="[custom] mrnxformat: value outside the allowed range",
            ),
            RecordError(
                job_id=first,
                connection_id=cid,
                resource_type="Observation",
                remote_id="o3",
                path="subject",
                severity=warn,
                message="[reference] the referenced patient is not held for this connection",
            ),
            RecordError(
                job_id=second,
                connection_id=cid,
                resource_type="Immunization",
                severity=warn,
                message="[delete] the EHR returned no Immunization at all",
            ),
            # Cells a spreadsheet would run as formulas.
            RecordError(
                job_id=second,
                connection_id=cid,
                resource_type="Observation",
                remote_id="-42",
                path="@SUM(A1)",
                message="=1+1",
            ),
            RecordError(
                job_id=None,
                connection_id=other,
                resource_type="Patient",
                remote_id="p1",
                message="[required] gender is missing",
            ),
        ]
        session.add_all(rows)
        session.flush()
        return cid, first, second, [int(r.id) for r in rows[:-1]]


def _error_ids(world: ApiWorld, cid: int, **params) -> list[int]:
    got = world.client.get(
        ERRORS, params={"connection_id": cid, **params}, headers=world.headers("viewer")
    )
    assert got.status_code == 200, got.text
    return [item["id"] for item in got.json()["items"]]


def test_record_errors_per_job_record_check_and_rule(db_world):
    cid, first, second, ids = _errors()
    world = db_world
    required, mrn, range_, reference, delete, formula = ids
    assert _error_ids(world, cid) == ids[::-1]  # newest first; the other connection apart
    assert _error_ids(world, cid, job_id=first) == [reference, range_, mrn, required]
    assert _error_ids(world, cid, job_id=second) == [formula, delete]
    assert _error_ids(world, cid, resource_type="Patient") == [mrn, required]
    assert _error_ids(world, cid, resource_type="Observation", remote_id="o1") == [range_]
    assert _error_ids(world, cid, severity="warning") == [delete, reference]
    assert _error_ids(world, cid, severity="error", job_id=first) == [range_, mrn, required]
    assert _error_ids(world, cid, layer="custom") == [range_, mrn]
    assert _error_ids(world, cid, layer="required") == [required]
    assert _error_ids(world, cid, layer="delete") == [delete]
    # A rule's name is matched as written: "_" is no wildcard.
    assert _error_ids(world, cid, rule="mrn_format") == [mrn]
    assert _error_ids(world, cid, rule="mrnxformat") == [range_]
    assert _error_ids(world, cid, rule="mrn%") == []
    item = world.client.get(
        ERRORS,
        params={"connection_id": cid, "job_id": first, "limit": 1},
        headers=world.headers("viewer"),
    ).json()
    assert item["items"][0] | {"created_at": None} == {
        "id": reference,
        "job_id": first,
        "resource_type": "Observation",
        "remote_id": "o3",
        "path": "subject",
        "severity": "warning",
        "created_at": None,
        "message": "[reference] the referenced patient is not held for this connection",
    }
    # The cursor: older pages follow, each error once.
    seen, cursor = [], None
    while True:
        params = {"connection_id": cid, "limit": 4, **({"cursor": cursor} if cursor else {})}
        page = world.client.get(ERRORS, params=params, headers=world.headers("viewer")).json()
        seen += [i["id"] for i in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == ids[::-1]
    for bad in ({"layer": "Custom!"}, {"severity": "fatal"}, {"limit": 501}, {"rule": ""}):
        assert (
            world.client.get(
                ERRORS, params={"connection_id": cid, **bad}, headers=world.headers("viewer")
            ).status_code
            == 422
        ), bad
    assert (
        world.client.get(
            ERRORS, params={"connection_id": 999_999}, headers=world.headers("viewer")
        ).status_code
        == 404
    )
    assert world.client.get(ERRORS, params={"connection_id": cid}).status_code == 401


def _csv_rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")  # spreadsheets read the file as UTF-8
    return list(csv.reader(io.StringIO(text[1:])))


def test_record_errors_as_a_csv_file(db_world):
    cid, first, _second, ids = _errors()
    world = db_world
    got = world.client.get(
        f"{ERRORS}.csv", params={"connection_id": cid}, headers=world.headers("viewer")
    )
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == (
        f'attachment; filename="record-errors-connection-{cid}.csv"'
    )
    rows = _csv_rows(got.content.decode("utf-8"))
    assert rows[0] == [
        "when",
        "job_id",
        "resource_type",
        "remote_id",
        "path",
        "severity",
        "message",
    ]
    listed = world.client.get(
        ERRORS, params={"connection_id": cid}, headers=world.headers("viewer")
    ).json()["items"]
    assert len(rows) == 1 + len(ids)
    for row, item in zip(rows[1:], listed, strict=True):  # the same rows, newest first
        assert row[0].endswith("Z") and datetime.fromisoformat(row[0]) == datetime.fromisoformat(
            item["created_at"]
        )
        assert row[1:3] == [str(item["job_id"] or ""), item["resource_type"]]
    formula = rows[1]
    assert formula[3:] == ["'-42", "'@SUM(A1)", "error", "'=1+1"]  # no cell starts a formula
    assert rows[-1][3:] == ["p1", "gender", "error", "[required] gender is missing"]
    # The same filters as the list.
    custom = _csv_rows(
        world.client.get(
            f"{ERRORS}.csv",
            params={"connection_id": cid, "job_id": first, "layer": "custom"},
            headers=world.headers("viewer"),
        ).content.decode("utf-8")
    )
    assert [r[3] for r in custom[1:]] == ["o1", "p1"]
    none = _csv_rows(
        world.client.get(
            f"{ERRORS}.csv",
            params={"connection_id": cid, "rule": "no such rule"},
            headers=world.headers("viewer"),
        ).content.decode("utf-8")
    )
    assert len(none) == 1  # the header alone
    assert (
        world.client.get(
            f"{ERRORS}.csv", params={"connection_id": 999_999}, headers=world.headers("viewer")
        ).status_code
        == 404
    )
    assert world.client.get(f"{ERRORS}.csv", params={"connection_id": cid}).status_code == 401


def test_the_csv_is_read_in_chunks(db_world):
    cid, _first, _second, ids = _errors()
    flt = record_lists.ErrorFilter(connection_id=cid)
    pieces = list(record_lists.errors_csv(flt, chunk=2))
    assert len(pieces) == 1 + 3  # the header, then three chunks of at most two rows
    whole = list(record_lists.errors_csv(flt, chunk=1000))
    assert "".join(pieces) == "".join(whole) and len(whole) == 2
    assert [len(_csv_rows(pieces[0] + p)) - 1 for p in pieces[1:]] == [2, 2, 2]


def test_csv_cells_that_would_run_as_formulas_are_defused():
    assert [record_lists.csv_cell(v) for v in ("=A1", "+1", "-1", "@x", "\tx", "a=b", None, 3)] == [
        "'=A1",
        "'+1",
        "'-1",
        "'@x",
        "'\tx",
        "a=b",
        "",
        "3",
    ]
