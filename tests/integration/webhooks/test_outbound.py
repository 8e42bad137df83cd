"""Outbound: a local receiver gets signed deliveries (checked with the documented recipe),
fails on purpose, and the retries arrive on schedule; redelivery, test-send, rotation,
deletion and the SSRF guard."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from holovitals_sync.services.webhooks import emit
from holovitals_sync.services.webhooks.delivery import deliver

from .conftest import wait_for

DOC = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"


def recipe() -> dict:
    """Execute exactly the verification code block the docs give subscribers."""
    text = DOC.read_text()
    section = text.split("### Verifying a delivery", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


def _subscribe(backend, url: str, **overrides) -> dict:
    body = {
        "name": "receiver",
        "url": url,
        "event_types": ["patient.updated", "sync.completed"],
        "backoff_seconds": [1, 2],
        "max_retries": 2,
        "timeout_seconds": 2,
    } | overrides
    answer = httpx.post(
        f"{backend.url}/api/sync/webhooks", json=body, headers=backend.headers("operator")
    )
    assert answer.status_code == 201, answer.text
    # The API commits as its answer leaves: wait until the row is visible to emit().
    wait_for(lambda: _exists(answer.json()["id"]), timeout=5, interval=0.02)
    return answer.json()


def _exists(subscription_id: int) -> bool:
    with session_scope() as session:
        return session.get(WebhookSubscription, subscription_id) is not None


def _emit(event_type: str = "patient.updated", **refs) -> list[int]:
    with session_scope() as session:
        return emit(
            session,
            event_type,
            {"connection_id": None, "resource_type": "Patient", "resource_id": "pt-00001", **refs},
        )


def _delivery(delivery_id: int) -> WebhookDelivery:
    with session_scope() as session:
        return session.get(WebhookDelivery, delivery_id)


def test_signed_delivery_fails_retries_on_schedule_and_redelivers(backend, receiver, workers):
    sub = _subscribe(backend, receiver.url)
    assert "secret" in sub and sub["secret"].startswith("whsec_")
    listed = httpx.get(
        f"{backend.url}/api/sync/webhooks/{sub['id']}", headers=backend.headers("viewer")
    ).json()
    assert "secret" not in listed and "secret_encrypted" not in listed
    receiver.script = [503, 429]  # fail twice, then the default 200
    workers.start(1)
    (delivery_id,) = _emit()
    wait_for(lambda: len(receiver.requests) >= 3, timeout=30)

    verify = recipe()["verify"]
    first, second, third = receiver.requests[:3]
    for request in (first, second, third):
        assert verify(request.body, request.headers["x-holovitals-signature"], sub["secret"])
        assert request.headers["x-holovitals-event-type"] == "patient.updated"
    assert len({r.headers["x-holovitals-event-id"] for r in receiver.requests}) == 1
    assert not verify(first.body, first.headers["x-holovitals-signature"], "whsec_wrong")
    # Backoff 1 s then 2 s, each +-20 % jitter, never early (RQ keeps whole seconds, so the
    # retry is rounded up), plus up to ~1 s of rounding and ~1 s of scheduler polling.
    assert 0.8 <= second.at - first.at <= 3.3
    assert 1.6 <= third.at - second.at <= 4.5
    body = first.body.decode()
    assert '"reference":"Patient/pt-00001"' in body

    done = wait_for(
        lambda: _delivery(delivery_id).status is DeliveryStatus.DELIVERED and _delivery(delivery_id)
    )
    assert [a["status"] for a in done.attempt_log] == [503, 429, 200]
    assert all(isinstance(a["ms"], int) for a in done.attempt_log)
    log = httpx.get(
        f"{backend.url}/api/sync/webhooks/{sub['id']}/deliveries", headers=backend.headers("viewer")
    ).json()
    assert log[0]["attempts"] == 3 and log[0]["status"] == "delivered"

    again = httpx.post(
        f"{backend.url}/api/sync/webhooks/deliveries/{delivery_id}/redeliver",
        headers=backend.headers("operator"),
    )
    assert again.status_code == 202, again.text
    wait_for(lambda: len(receiver.requests) == 4)
    assert (
        receiver.requests[3].headers["x-holovitals-event-id"]
        == first.headers["x-holovitals-event-id"]
    )
    wait_for(
        lambda: (
            _delivery(delivery_id).attempts == 4
            and _delivery(delivery_id).status is DeliveryStatus.DELIVERED
        )
    )

    # Test-send returns the receiver's own answer, good or bad.
    receiver.script = [500]
    bad = httpx.post(
        f"{backend.url}/api/sync/webhooks/{sub['id']}/test", headers=backend.headers("operator")
    ).json()
    assert (bad["status"], bad["ok"]) == (500, False)
    good = httpx.post(
        f"{backend.url}/api/sync/webhooks/{sub['id']}/test", headers=backend.headers("operator")
    ).json()
    assert (good["status"], good["ok"]) == (200, True)
    assert receiver.requests[-1].headers["x-holovitals-event-type"] == "webhook.test"


def test_rotation_signs_with_both_secrets_and_deletion_ends_retries(backend, receiver, workers):
    sub = _subscribe(
        backend, receiver.url, algorithm="hmac-sha512", max_retries=5, backoff_seconds=[1]
    )
    rotated = httpx.post(
        f"{backend.url}/api/sync/webhooks/{sub['id']}/rotate-secret",
        json={"grace_seconds": 600},
        headers=backend.headers("operator"),
    )
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    workers.start(1)
    _emit()
    wait_for(lambda: receiver.requests)
    import hashlib

    verify = recipe()["verify"]
    request = receiver.requests[0]
    header = request.headers["x-holovitals-signature"]
    assert header.count("v1=") == 2
    for secret in (new_secret, sub["secret"]):
        assert verify(request.body, header, secret, digest=hashlib.sha512)

    # A failing endpoint keeps retrying until its subscription is deleted; then silence.
    receiver.script = [503] * 50
    (delivery_id,) = _emit()
    wait_for(lambda: len(receiver.requests) >= 3)
    assert (
        httpx.delete(
            f"{backend.url}/api/sync/webhooks/{sub['id']}", headers=backend.headers("operator")
        ).status_code
        == 204
    )
    time.sleep(0.5)
    seen = len(receiver.requests)
    time.sleep(3)
    assert len(receiver.requests) == seen
    assert _delivery(delivery_id) is None


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_a_slow_subscriber_holds_its_own_slots_only(backend, receiver, workers, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_WEBHOOK_SLOTS_PER_SUBSCRIPTION", "1")
    from holovitals_sync.config import get_settings

    get_settings.cache_clear()
    receiver.delay, receiver.slow_paths = 1.5, {"/slow"}
    _subscribe(backend, receiver.at("/slow"), timeout_seconds=5)
    _subscribe(backend, receiver.at("/fast"), event_types=["sync.completed"])
    workers.start(2)
    from rq import Worker

    from holovitals_sync.services.platform.redis import redis_connection

    wait_for(lambda: Worker.count(connection=redis_connection()) == 2, timeout=30)
    for _ in range(3):
        _emit()  # patient.updated: the slow subscriber only
    started = time.monotonic()
    _emit("sync.completed")
    wait_for(lambda: receiver.to("/fast"), timeout=10)
    # One slot for the slow one: the fast delivery did not wait behind its backlog ...
    assert receiver.to("/fast")[0].at - started < 1.4
    wait_for(lambda: len(receiver.to("/slow")) == 3, timeout=20)
    slow = [r.at for r in receiver.to("/slow")]
    # ... and the slow deliveries ran one at a time.
    assert all(b - a >= 1.4 for a, b in zip(slow, slow[1:], strict=False))


@SQLITE_ONLY
def test_a_failing_day_disables_the_subscription(backend, receiver, workers, monkeypatch):
    sub = _subscribe(backend, receiver.url, max_retries=0)
    receiver.script = [500]
    with session_scope() as session:
        (delivery_id,) = emit(session, "sync.completed", {"job_id": 1})
    monkeypatch.setenv("HOLOVITALS_WEBHOOK_DISABLE_AFTER_SECONDS", "1")
    from holovitals_sync.config import get_settings

    get_settings.cache_clear()
    # Run the attempt in this process (the failing window is this test's setting).
    time.sleep(1.1)
    assert deliver(delivery_id, 0) == "failed"
    row = httpx.get(
        f"{backend.url}/api/sync/webhooks/{sub['id']}", headers=backend.headers("viewer")
    ).json()
    assert row["active"] is False and row["disabled_reason"]
    assert _emit("sync.completed") == []  # an inactive subscription gets nothing


INTERNAL = [
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest",
    "http://127.0.0.2:9/hook",
    "http://[::1]:9/hook",
    "http://192.168.1.1/hook",
    "ftp://example.org/x",
]


@SQLITE_ONLY
def test_ssrf_guard_refuses_internal_targets_at_save(backend):
    for url in INTERNAL:
        answer = httpx.post(
            f"{backend.url}/api/sync/webhooks",
            json={"name": "x", "url": url, "event_types": ["patient.updated"]},
            headers=backend.headers("operator"),
        )
        assert answer.status_code == 422, (url, answer.text)
    with session_scope() as session:
        assert session.exec(select(WebhookSubscription)).all() == []
    # The allow-list (127.0.0.1 in these tests) opens exactly what it names.
    allowed = httpx.post(
        f"{backend.url}/api/sync/webhooks",
        json={"name": "x", "url": "http://127.0.0.1:9/hook", "event_types": ["patient.updated"]},
        headers=backend.headers("operator"),
    )
    assert allowed.status_code == 201


@SQLITE_ONLY
def test_ssrf_guard_refuses_at_send_time(backend, receiver, redis_client):
    sub = _subscribe(backend, receiver.url)
    # The host moved inside the network after it was saved (here: written directly).
    with session_scope() as session:
        row = session.get(WebhookSubscription, sub["id"])
        row.url = "http://10.9.8.7/hook"
        session.add(row)
    (delivery_id,) = _emit()
    assert deliver(delivery_id, 0) == "failed"
    row = _delivery(delivery_id)
    assert row.attempt_log[0]["error"] == "target refused" and not receiver.requests
