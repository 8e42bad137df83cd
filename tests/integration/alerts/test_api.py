"""GET /api/alerts and POST /api/alerts/{id}/acknowledge."""

from __future__ import annotations

from holovitals_sync.db import session_scope
from holovitals_sync.models import Alert, AlertKind, AlertStatus, AuditLog
from tests.integration.api.conftest import api_db, world  # noqa: F401 (fixtures)


def _alerts(count: int, status: AlertStatus = AlertStatus.OPEN) -> list[int]:
    with session_scope() as session:
        rows = [
            Alert(
                kind=AlertKind.QUEUE_DEPTH,
                subject=f"queue:{status.value}{n}",
                message="5 jobs waiting",
                status=status,
                queue="sync",
            )
            for n in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def test_list_pages_and_filters(world):  # noqa: F811 (fixture)
    open_ids = _alerts(3)
    closed_ids = _alerts(2, AlertStatus.CLOSED)
    viewer = world.headers("viewer")
    page = world.client.get("/api/alerts?limit=2", headers=viewer).json()
    assert [a["id"] for a in page["items"]] == sorted(open_ids + closed_ids, reverse=True)[:2]
    assert (page["next_offset"], page["open_count"]) == (2, 3)
    last = world.client.get("/api/alerts?limit=2&offset=4", headers=viewer).json()
    assert len(last["items"]) == 1 and last["next_offset"] is None
    closed = world.client.get("/api/alerts?status=closed", headers=viewer).json()
    assert sorted(a["id"] for a in closed["items"]) == closed_ids
    item = closed["items"][0]
    assert {
        "kind",
        "severity",
        "subject",
        "message",
        "status",
        "raised_at",
        "occurrences",
        "acknowledged_by",
        "connection_id",
        "queue",
    } <= set(item)
    bad = world.client.get("/api/alerts?status=nope", headers=viewer)
    assert bad.status_code == 422 and "status" in bad.text


def test_acknowledge(world):  # noqa: F811 (fixture)
    (aid,) = _alerts(1)
    (closed,) = _alerts(1, AlertStatus.CLOSED)
    operator = world.headers("operator")
    assert (
        world.client.post(
            f"/api/alerts/{aid}/acknowledge", headers=world.headers("viewer")
        ).status_code
        == 403
    )
    answer = world.client.post(f"/api/alerts/{aid}/acknowledge", headers=operator)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "acknowledged"
    assert answer.json()["acknowledged_by"] == "operator/token:2"
    again = world.client.post(f"/api/alerts/{aid}/acknowledge", headers=operator)
    assert (
        again.status_code == 200
        and again.json()["acknowledged_at"] == answer.json()["acknowledged_at"]
    )
    gone = world.client.post(f"/api/alerts/{closed}/acknowledge", headers=operator)
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "conflict"
    missing = world.client.post(f"/api/alerts/{closed + 99}/acknowledge", headers=operator)
    assert missing.status_code == 404
    with session_scope() as session:
        entries = session.query(AuditLog).filter(AuditLog.action == "alert.acknowledge").all()
        assert [e.target_id for e in entries] == [str(aid)]
    counts = world.client.get("/api/alerts", headers=operator).json()
    assert counts["open_count"] == 0


def test_threshold_overrides(world):  # noqa: F811 (fixture)
    from tests.factories import make_connection

    with session_scope() as session:
        cid = make_connection(session).id
    admin, viewer = world.headers("admin"), world.headers("viewer")
    start = world.client.get("/api/alerts/thresholds", headers=viewer).json()
    assert start == {
        "defaults": {
            "queue_depth": 1000.0,
            "job_failures": 3.0,
            "job_slow": 3.0,
            "conflict_backlog": 50.0,
            "feed_silent": 30.0,
        },
        "overrides": [],
    }
    body = {"kind": "job_failures", "connection_id": cid, "value": 5}
    assert (
        world.client.put(
            "/api/alerts/thresholds", json=body, headers=world.headers("operator")
        ).status_code
        == 403
    )
    answer = world.client.put("/api/alerts/thresholds", json=body, headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.json()["overrides"] == [
        {"kind": "job_failures", "connection_id": cid, "queue": None, "value": 5.0}
    ]
    refused = [
        ({**body, "value": True}, 422),  # strict: a boolean is no number
        ({**body, "connection_id": cid + 50}, 404),
        ({"kind": "queue_depth", "queue": "elsewhere", "value": 3}, 422),
        ({"kind": "subscription_disabled", "queue": "sync", "value": 3}, 422),
    ]
    for wrong, status in refused:
        assert (
            world.client.put("/api/alerts/thresholds", json=wrong, headers=admin).status_code
            == status
        ), wrong
    removed = world.client.put(
        "/api/alerts/thresholds", json={**body, "value": None}, headers=admin
    )
    assert removed.json()["overrides"] == []
    with session_scope() as session:
        actions = [e.action for e in session.query(AuditLog).all()]
    assert actions.count("alert_threshold.set") == 2
