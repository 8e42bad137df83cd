"""Inbound: the sandbox EHR sends signed notifications over HTTP to the running backend;
each signature style is accepted and becomes the expected sync job; forgeries, stale
timestamps, replays and oversized bodies are refused and only counted."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    EHRConnection,
    InboundEvent,
    InboundStatus,
    JobType,
    SyncJob,
)
from holovitals_sync.sandbox import notify
from holovitals_sync.services.webhooks import rejections
from tests.factories import make_connection

from .conftest import MAX_BODY, wait_for


def _connection(
    backend, name: str, auth: str, base_url: str = "https://fhir.example.org/r4", **kw
) -> tuple[int, str]:
    with session_scope() as session:
        cid = make_connection(
            session,
            name,
            base_url=base_url,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            scopes="system/*.read system/*.write",
            **kw,
        ).id
    answer = httpx.put(
        f"{backend.url}/api/connections/{cid}/inbound-auth",
        json={"auth": auth},
        headers=backend.headers("admin"),
    )
    assert answer.status_code == 200, answer.text
    # The API commits as the answer leaves: wait for it before the next audited write.
    wait_for(lambda: _auth_of(cid) == auth, timeout=5, interval=0.02)
    return cid, answer.json()["secret"]


def _auth_of(connection_id: int) -> str | None:
    with session_scope() as session:
        return session.get(EHRConnection, connection_id).inbound_auth


def _events(connection_id: int | None = None) -> list[InboundEvent]:
    with session_scope() as session:
        query = select(InboundEvent).order_by(InboundEvent.id)
        if connection_id is not None:
            query = query.where(InboundEvent.connection_id == connection_id)
        return list(session.exec(query))


def _jobs(connection_id: int) -> list[SyncJob]:
    with session_scope() as session:
        return list(
            session.exec(
                select(SyncJob).where(SyncJob.connection_id == connection_id).order_by(SyncJob.id)
            )
        )


def test_sandbox_notifications_in_every_style_become_sync_jobs(backend, sandbox, workers):
    styles = {"holovitals": "holovitals_hmac", "hub": "websub_hmac", "plain": "plain_hmac"}
    conns = {
        style: _connection(backend, f"EHR {style}", auth, sandbox.base_url)
        for style, auth in styles.items()
    }
    cid, secret = conns["holovitals"]
    url = backend.inbound(cid)
    # A burst about one patient (queued before any worker runs) must collapse into one job.
    for kind, payload in [
        ("handshake", "empty"),
        ("heartbeat", "empty"),
        ("event-notification", "full-resource"),
        ("event-notification", "id-only"),
        ("vendor-event", "id-only"),
    ]:
        answer = sandbox.notify(
            url,
            secret,
            kind=kind,
            payload=payload,
            resource="Patient/pt-00001",
            signature_style="holovitals",
        )
        assert answer["status"] == 202, answer
    assert (
        sandbox.notify(
            url, secret, kind="event-notification", payload="empty", signature_style="holovitals"
        )["status"]
        == 202
    )
    for style in ("hub", "plain"):
        other, other_secret = conns[style]
        answer = sandbox.notify(
            backend.inbound(other),
            other_secret,
            payload="id-only",
            resource="Patient/pt-00002",
            signature_style=style,
        )
        assert answer["status"] == 202, answer
    # Stored before the 202, and nothing but ids.
    stored = _events(cid)
    assert [e.status for e in stored] == [InboundStatus.RECEIVED] * 6
    assert {e.patient_ref for e in stored} == {"Patient/pt-00001", None}

    workers.start(1)
    wait_for(lambda: all(e.status is InboundStatus.PROCESSED for e in _events()), timeout=60)
    jobs = _jobs(cid)
    patient_jobs = [j for j in jobs if j.job_type is JobType.PATIENT]
    assert [(j.patient_id, j.requested_by_kind.value) for j in patient_jobs] == [
        ("pt-00001", "webhook")
    ]
    assert [j.job_type for j in jobs if j.job_type is not JobType.PATIENT] == [
        JobType.INCREMENTAL
    ]  # the empty-payload notification
    events = _events(cid)
    assert {e.job_id for e in events if e.patient_ref} == {patient_jobs[0].id}
    assert sum(e.job_id is None for e in events) == 2  # handshake + heartbeat: counted only
    for style in ("hub", "plain"):
        (job,) = _jobs(conns[style][0])
        assert (job.job_type, job.patient_id) == (JobType.PATIENT, "pt-00002")

    def finished() -> bool:
        return _job_done(patient_jobs[0].id)

    wait_for(finished, timeout=120)
    with session_scope() as session:
        job = session.get(SyncJob, patient_jobs[0].id)
        assert job.status.value == "completed", job.last_error


def _job_done(job_id: int) -> bool:
    with session_scope() as session:
        return session.get(SyncJob, job_id).status.finished


def _signed(body: bytes, secret: str, t: int | None = None) -> dict[str, str]:
    return {"Content-Type": "application/fhir+json", **notify.sign(body, secret, "holovitals", t)}


# "route": the same answers from the FastAPI route, which serves when the middleware is absent;
# "ahead": from the receiver wrapped around the whole app, as `up` serves it under Reflex.
@pytest.mark.parametrize("backend", ["fast_path", "route", "ahead"], indirect=True)
def test_forgeries_replays_and_oversized_bodies_are_refused(backend, redis_client):
    cid, secret = _connection(backend, "EHR checks", "holovitals_hmac")
    url = backend.inbound(cid)
    body, _ = notify.build("event-notification", "id-only", "Patient/pt-00003", None)
    stale = int(time.time()) - 3600

    assert httpx.post(url, content=body, headers=_signed(body, "wrong-secret")).status_code == 401
    assert httpx.post(url, content=body, headers=_signed(body, secret, stale)).status_code == 401
    tampered = body.replace(b"pt-00003", b"pt-00004")
    assert httpx.post(url, content=tampered, headers=_signed(body, secret)).status_code == 401
    assert httpx.post(url, content=body).status_code == 401  # unsigned
    assert (
        httpx.post(url, content=b"not json", headers=_signed(b"not json", secret)).status_code
        == 400
    )
    big = b"{" + b" " * MAX_BODY + b"}"
    assert httpx.post(url, content=big, headers=_signed(big, secret)).status_code == 413

    def chunks():  # no Content-Length: the cap applies while streaming
        for _ in range(10):
            yield b" " * 1024

    assert httpx.post(url, content=chunks(), headers=_signed(b"", secret)).status_code == 413
    for unknown in (999_999, 10**12):  # 10**12: beyond PostgreSQL's integer keys
        assert (
            httpx.post(
                backend.inbound(unknown), content=body, headers=_signed(body, secret)
            ).status_code
            == 404
        )

    first = httpx.post(url, content=body, headers=_signed(body, secret))
    assert first.status_code == 202
    replay = httpx.post(url, content=body, headers=_signed(body, secret))
    assert replay.status_code == 409

    rows = _events()
    # Only the accepted event is a row: refusals are counted (one row per reason, however
    # many arrive) and sampled by time and reason, nothing of the request kept.
    assert [r.id for r in rows] == [first.json()["event_id"]]
    assert rows[0].status is InboundStatus.RECEIVED
    with session_scope() as session:
        counted = {
            (c.connection_id, c.status, c.reason): c.count for c in rejections.counts(session)
        }
    assert sum(counted.values()) == 10 and counted[(cid, "rejected", "bad signature")] == 2
    sample = rejections.recent(cid)
    assert len(sample) == 8 and set(sample[0]) == {"at", "status", "reason"}
    stats = httpx.get(
        f"{backend.url}/api/sync/webhooks/inbound/stats", headers=backend.headers("viewer")
    ).json()
    mine = next(s for s in stats if s["connection_id"] == cid)
    assert mine["by_status"] == {"received": 1, "rejected": 7, "duplicate": 1}
    assert mine["rejections"] == {
        "bad signature": 2,
        "stale timestamp": 1,
        "missing signature": 1,
        "malformed: body is not JSON": 1,
        "body too large": 2,
        "replayed event id": 1,
    }
    unknown = next(s for s in stats if s["connection_id"] is None)
    assert unknown["rejections"] == {"unknown connection": 2}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bearer_and_sha512(backend, redis_client):
    cid, token = _connection(backend, "EHR bearer", "bearer")
    event = orjson.dumps(notify.vendor_event("Observation/obs-1", patient="Patient/pt-00005"))
    url = backend.inbound(cid)
    assert (
        httpx.post(url, content=event, headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert (
        httpx.post(url, content=event, headers={"Authorization": f"Bearer {token}"}).status_code
        == 202
    )
    (row,) = [r for r in _events(cid) if r.status is InboundStatus.RECEIVED]
    assert (row.resource_type, row.resource_id, row.patient_ref) == (
        "Observation",
        "obs-1",
        "Patient/pt-00005",
    )

    with session_scope() as session:
        cid2 = make_connection(session, "EHR 512").id
    answer = httpx.put(
        f"{backend.url}/api/connections/{cid2}/inbound-auth",
        json={"auth": "holovitals_hmac", "algorithm": "hmac-sha512"},
        headers=backend.headers("admin"),
    ).json()
    from holovitals_sync.models import SignatureAlgorithm
    from holovitals_sync.services.webhooks import signing

    header = signing.sign(event, [answer["secret"]], algorithm=SignatureAlgorithm.HMAC_SHA512)
    ok = httpx.post(
        backend.inbound(cid2), content=event, headers={signing.SIGNATURE_HEADER: header}
    )
    assert ok.status_code == 202, ok.text
    sha256 = notify.sign(event + b" ", answer["secret"], "holovitals")
    assert (
        httpx.post(backend.inbound(cid2), content=event + b" ", headers=sha256).status_code == 401
    )


def test_a_flood_of_refusals_fills_nothing(wh_db, monkeypatch):
    """Each refused request was a row, never cleaned up: an attacker could fill the disk."""
    from holovitals_sync.config import get_settings
    from holovitals_sync.models import InboundRejection
    from holovitals_sync.services.webhooks import inbound

    monkeypatch.setenv("HOLOVITALS_INBOUND_REJECTION_SAMPLE", "20")
    get_settings.cache_clear()
    with session_scope() as session:
        cid = make_connection(session, "Flooded").id
    for n in range(300):
        with session_scope() as session:
            inbound.reject(
                session,
                cid if n % 3 else 999_999,
                inbound.Outcome(
                    401 if n % 3 else 404, "bad signature" if n % 3 else "unknown connection"
                ),
            )
    with session_scope() as session:
        rows = session.exec(select(InboundRejection)).all()
        assert session.exec(select(InboundEvent)).all() == []
    assert sorted((r.connection_id, r.reason, r.count) for r in rows) == [
        (0, "unknown connection", 100),
        (cid, "bad signature", 200),
    ]
    assert len(rejections.recent(cid)) == 20 and len(rejections.recent(None)) == 20
