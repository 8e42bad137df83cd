"""The conflicts API: list with filters and cursor, side-by-side detail, resolve, bulk."""

from __future__ import annotations

from holovitals_sync.db import session_scope
from tests.factories import make_conflict, make_connection


def _setup(n: int = 3) -> tuple[int, list[int]]:
    with session_scope() as session:
        cid = make_connection(session, "Conflicts General").id
        ids = [make_conflict(session, cid, remote_id=f"pt-{i}") for i in range(n)]
        ids.append(make_conflict(session, cid, remote_id="pt-x", resource_type="Condition"))
    return cid, ids


def test_list_filters_and_cursor(world):
    cid, ids = _setup()
    h = world.headers("viewer")
    page = world.client.get("/api/sync/conflicts", params={"limit": 2}, headers=h).json()
    assert [i["id"] for i in page["items"]] == ids[::-1][:2]
    rest = world.client.get(
        "/api/sync/conflicts", headers=h, params={"limit": 2, "cursor": page["next_cursor"]}
    ).json()
    assert [i["id"] for i in rest["items"]] == ids[::-1][2:] and rest["next_cursor"] is None
    only = world.client.get(
        "/api/sync/conflicts",
        headers=h,
        params={
            "resource_type": "Condition",
            "status": "open",
            "connection_id": cid,
            "severity": "low",
        },
    ).json()
    assert [i["id"] for i in only["items"]] == [ids[-1]]
    by_patient = world.client.get(
        "/api/sync/conflicts", headers=h, params={"patient": "pt-1"}
    ).json()
    assert [(i["id"], i["patient_ref"]) for i in by_patient["items"]] == [(ids[1], "Patient/pt-1")]


def test_detail_is_side_by_side(world):
    _, ids = _setup(1)
    body = world.client.get(f"/api/sync/conflicts/{ids[0]}", headers=world.headers("viewer"))
    detail = body.json()
    assert detail["fields"] == ["code.text"]
    assert (detail["base_values"], detail["local_values"], detail["remote_values"]) == (
        {"code.text": "base"},
        {"code.text": "local"},
        {"code.text": "remote"},
    )
    assert (
        world.client.get("/api/sync/conflicts/999999", headers=world.headers("viewer")).status_code
        == 404
    )


def test_resolve_merge_then_refuse_a_second_time(world):
    _, ids = _setup(1)
    h, url = world.headers("operator"), f"/api/sync/conflicts/{ids[0]}/resolve"
    missing = world.client.post(
        url,
        headers=h,
        json={"strategy": "merge", "reason": "x", "choices": {}, "write_back": False},
    )
    assert missing.status_code == 400 and "code.text" in missing.json()["error"]["message"]
    no_reason = world.client.post(url, headers=h, json={"strategy": "use_local", "reason": ""})
    assert no_reason.status_code == 422
    done = world.client.post(
        url,
        headers=h,
        json={
            "strategy": "merge",
            "reason": "remote is right",
            "choices": {"code.text": "remote"},
            "write_back": False,
        },
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "resolved" and done.json()["resolved_by"].startswith("operator")
    assert done.json()["resolution"]["values"] == {"code.text": "remote"}
    again = world.client.post(url, headers=h, json={"strategy": "use_local", "reason": "x"})
    assert again.status_code == 409


def test_bulk_by_ids_resolves_low_and_skips_others(world):
    cid, ids = _setup(2)
    with session_scope() as session:
        from holovitals_sync.models import Conflict, Severity

        session.get(Conflict, ids[0]).severity = Severity.HIGH
    response = world.client.post(
        "/api/sync/conflicts/resolve-bulk",
        headers=world.headers("operator"),
        json={"ids": ids, "strategy": "use_remote", "reason": "feed", "write_back": False},
    )
    assert response.status_code == 200, response.text
    assert response.json()["resolved"] == ids[1:]
    assert list(response.json()["skipped"]) == [str(ids[0])]


def test_policies(world):
    h = world.headers("admin")
    put = world.client.put(
        "/api/sync/conflicts/policies",
        headers=h,
        json={"resource_type": "Condition", "strategy": "use_remote"},
    )
    assert put.json() == {
        "resource_type": "Condition",
        "strategy": "use_remote",
        "source": "global",
        "automatic": True,
    }
    listed = world.client.get("/api/sync/conflicts/policies", headers=h).json()
    assert {p["resource_type"]: p["strategy"] for p in listed}["MedicationRequest"] == "manual"
