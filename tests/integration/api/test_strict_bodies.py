"""JSON bodies take scalars at their type: `true` is no integer, "10" no number, 1 no boolean.

Each refusal is a 422 naming the field, and nothing is stored; query parameters (always
strings on the wire) still convert as before.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import ApiToken, EHRConnection, SyncJob, WebhookSubscription
from tests.factories import make_connection, make_subscription

HOOK = "https://93.184.215.14/hook"

# (method, path, body, the field the 422 must name, the table that must stay as it was)
CASES = [
    (
        "POST",
        "/api/auth/tokens",
        {"name": "t", "role": "viewer", "expires_in_days": True},
        "body.expires_in_days",
        ApiToken,
    ),
    (
        "POST",
        "/api/auth/tokens",
        {"name": "t", "role": "viewer", "expires_in_days": "7"},
        "body.expires_in_days",
        ApiToken,
    ),
    (
        "POST",
        "/api/connections",
        {"name": "N", "vendor": "generic", "base_url": HOOK, "concurrency_limit": True},
        "body.concurrency_limit",
        EHRConnection,
    ),
    (
        "POST",
        "/api/sync/webhooks",
        {"name": "w", "url": HOOK, "event_types": ["patient.updated"], "max_retries": False},
        "body.max_retries",
        WebhookSubscription,
    ),
    (
        "POST",
        "/api/sync/webhooks",
        {"name": "w", "url": HOOK, "event_types": ["patient.updated"], "timeout_seconds": "10"},
        "body.timeout_seconds",
        WebhookSubscription,
    ),
    (
        "POST",
        "/api/sync/webhooks",
        {
            "name": "w",
            "url": HOOK,
            "event_types": ["patient.updated"],
            "backoff_seconds": [10, True],
        },
        "body.backoff_seconds.1",
        WebhookSubscription,
    ),
    ("PATCH", "/api/sync/webhooks/{sid}", {"active": 1}, "body.active", None),
    (
        "POST",
        "/api/sync/jobs",
        {"connection_id": True, "job_type": "full"},
        "body.connection_id",
        SyncJob,
    ),
    (
        "POST",
        "/api/sync/conflicts/resolve-bulk",
        {"filter": {"connection_id": True}, "strategy": "use_remote", "reason": "r"},
        "body.filter.connection_id",
        None,
    ),
    ("PUT", "/api/transformations/rules/1/enabled", {"enabled": "yes"}, "body.enabled", None),
]


def _count(table) -> int:
    with session_scope() as session:
        return len(session.exec(select(table)).all())


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "table"),
    CASES,
    ids=[f"{c[0]} {c[1]} {c[3]}" for c in CASES],
)
def test_wrong_scalar_type_is_refused(world, method, path, body, field, table):
    with session_scope() as session:
        make_connection(session)
        sid = make_subscription(session).id
    before = _count(table) if table else None
    answer = world.client.request(
        method, path.format(sid=sid), json=body, headers=world.headers("admin")
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_body"
    assert field in [f["field"] for f in error["fields"]]
    if table is not None:
        assert _count(table) == before
    if path.startswith("/api/sync/webhooks/"):
        with session_scope() as session:
            assert session.get(WebhookSubscription, sid).active is True


def test_right_types_still_pass(world):
    """Integers where a number is expected, enums and timestamps as JSON strings."""
    admin = world.headers("admin")
    token = world.client.post(
        "/api/auth/tokens",
        headers=admin,
        json={"name": "t", "role": "viewer", "expires_in_days": 7},
    )
    assert token.status_code == 201, token.text
    hook = world.client.post(
        "/api/sync/webhooks",
        headers=admin,
        json={
            "name": "w",
            "url": HOOK,
            "event_types": ["patient.updated"],
            "timeout_seconds": 10,
            "max_retries": 2,
            "backoff_seconds": [5, 10],
            "algorithm": "hmac-sha512",
        },
    )
    assert hook.status_code == 201, hook.text
    assert hook.json()["timeout_seconds"] == 10.0
    patched = world.client.patch(
        f"/api/sync/webhooks/{hook.json()['id']}",
        headers=admin,
        json={"active": False, "timeout_seconds": 2.5},
    )
    assert patched.status_code == 200 and patched.json()["active"] is False


def test_query_parameters_still_convert(world):
    with session_scope() as session:
        cid = make_connection(session).id
    answer = world.client.get(
        f"/api/sync/jobs?connection_id={cid}&limit=5", headers=world.headers("viewer")
    )
    assert answer.status_code == 200, answer.text
    alerts = world.client.get("/api/alerts?offset=0&limit=3", headers=world.headers("viewer"))
    assert alerts.status_code == 200 and alerts.json()["limit"] == 3
