"""Sync job and statistics routes: bodies, filters, pagination, 404/409/422, audit."""

from __future__ import annotations

from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import AuditLog, JobStatus
from tests.factories import make_connection, make_job


def _connection() -> int:
    with session_scope() as session:
        return make_connection(session).id


def test_start_list_get_cancel_retry(world):
    cid = _connection()
    op = world.headers("operator")
    created = world.client.post(
        "/api/sync/jobs",
        headers=op,
        json={"connection_id": cid, "job_type": "incremental", "priority": "high"},
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "queued" and job["requested_by_kind"] == "token"
    assert "checkpoint" not in job

    got = world.client.get(f"/api/sync/jobs/{job['id']}", headers=world.headers("viewer"))
    assert got.json()["priority"] == "high"
    assert world.client.get("/api/sync/jobs/9999", headers=op).status_code == 404

    cancelled = world.client.post(f"/api/sync/jobs/{job['id']}/cancel", headers=op)
    assert cancelled.json()["status"] == "cancelled"
    again = world.client.post(f"/api/sync/jobs/{job['id']}/cancel", headers=op)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"

    retried = world.client.post(f"/api/sync/jobs/{job['id']}/retry", headers=op)
    assert retried.json()["status"] == "queued"
    assert world.client.post(f"/api/sync/jobs/{job['id']}/retry", headers=op).status_code == 409
    with session_scope() as session:
        actions = [
            a.action
            for a in session.exec(select(AuditLog).where(AuditLog.target_type == "sync_job"))
        ]
    assert actions == ["sync_job.start", "sync_job.cancel", "sync_job.retry"]


def test_invalid_bodies_and_unknown_connection(world):
    cid = _connection()
    op = world.headers("operator")
    bad = [
        {"connection_id": cid, "job_type": "patient"},
        {"connection_id": cid, "job_type": "resource", "resource_type": "not a type"},
        {"connection_id": cid, "job_type": "sideways"},
    ]
    for body in bad:
        assert world.client.post("/api/sync/jobs", headers=op, json=body).status_code == 422
    missing = world.client.post(
        "/api/sync/jobs", headers=op, json={"connection_id": 999, "job_type": "full"}
    )
    assert missing.status_code == 404


def test_list_filters_and_cursor_pagination(world):
    cid = _connection()
    with session_scope() as session:
        other = make_connection(session, "Other").id
        for _ in range(5):
            make_job(session, cid, JobStatus.COMPLETED)
        make_job(session, other, JobStatus.FAILED)
    viewer = world.headers("viewer")
    page = world.client.get(
        "/api/sync/jobs", headers=viewer, params={"connection_id": cid, "limit": 3}
    ).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = world.client.get(
        "/api/sync/jobs",
        headers=viewer,
        params={"connection_id": cid, "cursor": page["next_cursor"]},
    ).json()
    ids = [j["id"] for j in page["items"] + rest["items"]]
    assert len(ids) == 5 == len(set(ids)) and ids == sorted(ids, reverse=True)
    assert rest["next_cursor"] is None
    failed = world.client.get("/api/sync/jobs", headers=viewer, params={"status": "failed"}).json()[
        "items"
    ]
    assert [j["connection_id"] for j in failed] == [other]


def test_dead_letter_and_replay(world):
    cid = _connection()
    with session_scope() as session:
        failed = [make_job(session, cid, JobStatus.FAILED).id for _ in range(3)]
        done = make_job(session, cid, JobStatus.COMPLETED).id
    viewer, op = world.headers("viewer"), world.headers("operator")
    listed = world.client.get("/api/sync/dead-letter", headers=viewer).json()
    assert sorted(j["id"] for j in listed) == failed
    assert all(j["last_error"] == "ServerError: HTTP 503" for j in listed)
    conflict = world.client.post(
        "/api/sync/dead-letter/replay", headers=op, json={"job_ids": [done]}
    )
    assert conflict.status_code == 409
    one = world.client.post(
        "/api/sync/dead-letter/replay", headers=op, json={"job_ids": [failed[0]]}
    ).json()
    assert [j["status"] for j in one] == ["queued"]
    rest = world.client.post("/api/sync/dead-letter/replay", headers=op, json={}).json()
    assert sorted(j["id"] for j in rest) == failed[1:]
    assert world.client.get("/api/sync/dead-letter", headers=viewer).json() == []


def test_statistics(world):
    cid = _connection()
    with session_scope() as session:
        make_job(session, cid, JobStatus.FAILED)
    stats = world.client.get("/api/sync/statistics", headers=world.headers("viewer")).json()
    assert set(stats["queues"]) == {"sync", "webhooks", "conflicts", "transformations"}
    assert stats["queues"]["sync"]["waiting"] == 0
    assert stats["jobs"]["failed"] == 1 and stats["records_synced"] == 0
    assert stats["connections"][0] == {
        "connection_id": cid,
        "name": "General Hospital",
        "last_success": None,
        "lag_seconds": None,
    }


def test_a_type_the_connection_does_not_serve_is_a_422_naming_the_field(world):
    cid = _connection()
    refused = world.client.post(
        "/api/sync/jobs",
        headers=world.headers("operator"),
        json={"connection_id": cid, "job_type": "resource", "resource_type": "Patientz"},
    )
    assert refused.status_code == 422, refused.text
    [field] = refused.json()["error"]["fields"]
    assert field["field"] == "body.resource_type"
    assert "'Patientz'" in field["message"] and "Condition" in field["message"]
    listed = world.client.get("/api/sync/jobs", headers=world.headers("viewer")).json()
    assert listed["items"] == []  # nothing stored, nothing queued
