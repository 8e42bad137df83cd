"""The permission matrix: every route as nobody and as each role."""

from __future__ import annotations

import pytest

from holovitals_sync.db import session_scope
from holovitals_sync.models import Alert, AlertKind, HL7Feed, JobStatus, SyncedRecord
from holovitals_sync.services.records import local_etag
from holovitals_sync.services.transformation import DataTransformationService
from holovitals_sync.services.transformation.schemas import RuleIn
from holovitals_sync.services.validation_rules import ValidationRuleService
from tests.factories import (
    make_conflict,
    make_connection,
    make_delivery,
    make_job,
    make_record,
    make_subscription,
)

RANK = {None: -1, "viewer": 0, "operator": 1, "admin": 2}

# (method, path, json body, lowest role allowed; None = anyone)
ROUTES = [
    ("GET", "/api/health", None, None),
    ("GET", "/api/metrics", None, "viewer"),
    ("GET", "/api/records?connection_id={cid}&patient=p1", None, "viewer"),
    ("GET", "/api/records/errors?connection_id={cid}&layer=required", None, "viewer"),
    ("GET", "/api/records/errors.csv?connection_id={cid}", None, "viewer"),
    ("GET", "/api/records/{cid}/{rtype}/{pid}", None, "viewer"),
    (
        "PUT",
        "/api/records/{cid}/{rtype}/{pid}",
        {"resourceType": "Patient", "id": "p1", "gender": "other"},
        "operator",
    ),
    ("PATCH", "/api/records/{cid}/{rtype}/{pid}", {"gender": "female"}, "operator"),
    ("DELETE", "/api/records/{cid}/{rtype}/{pid}", None, "operator"),
    ("GET", "/api/transformations/rules", None, "viewer"),
    ("POST", "/api/transformations/rules", {"kind": "redact", "params": {"path": "text"}}, "admin"),
    (
        "POST",
        "/api/transformations/rules/dry-run",
        {"resource": {"resourceType": "Patient"}},
        "operator",
    ),
    ("PATCH", "/api/transformations/rules/{rid}", {"description": "d"}, "admin"),
    ("PUT", "/api/transformations/rules/{rid}/enabled", {"enabled": False}, "admin"),
    ("POST", "/api/transformations/rules/reorder", {"rule_ids": ["{rid}"]}, "admin"),
    ("DELETE", "/api/transformations/rules/{rid}", None, "admin"),
    ("GET", "/api/connections/{cid}/jwks.json", None, None),
    ("GET", "/api/connections/{cid}/validation-rules", None, "viewer"),
    (
        "POST",
        "/api/connections/{cid}/validation-rules",
        {"check": "range", "name": "r{n}", "path": "valueQuantity.value", "min": 0},
        "admin",
    ),
    (
        "POST",
        "/api/connections/{cid}/validation-rules/check",
        {"resource": {"resourceType": "Observation"}},
        "operator",
    ),
    ("POST", "/api/connections/{cid}/validation-rules/reorder", {"rule_ids": ["{vid}"]}, "admin"),
    ("GET", "/api/connections/{cid}/validation-rules/{vid}", None, "viewer"),
    (
        "PUT",
        "/api/connections/{cid}/validation-rules/{vid}",
        {"check": "fhirpath", "name": "f", "expression": "status.exists()"},
        "admin",
    ),
    ("PATCH", "/api/connections/{cid}/validation-rules/{vid}", {"enabled": False}, "admin"),
    ("DELETE", "/api/connections/{cid}/validation-rules/{vid}", None, "admin"),
    ("GET", "/api/auth/me", None, "viewer"),
    ("GET", "/api/auth/tokens", None, "viewer"),
    ("POST", "/api/auth/tokens", {"name": "t", "role": "viewer"}, "viewer"),
    ("GET", "/api/connections", None, "viewer"),
    ("GET", "/api/connections/{cid}", None, "viewer"),
    (
        "POST",
        "/api/connections",
        {"name": "N{n}", "vendor": "generic", "base_url": "https://x.example/fhir"},
        "admin",
    ),
    ("PATCH", "/api/connections/{cid}", {"scopes": "system/*.rs"}, "admin"),
    ("POST", "/api/connections/{cid}/keys", {"alg": "ES384"}, "admin"),
    ("DELETE", "/api/connections/{other}", None, "admin"),
    ("GET", "/api/users", None, "admin"),
    (
        "POST",
        "/api/users",
        {"username": "u{n}", "password": "long enough password", "role": "viewer"},
        "admin",
    ),
    ("PATCH", "/api/users/{uid}", {"active": True}, "admin"),
    ("GET", "/api/audit", None, "operator"),
    ("GET", "/api/audit/verify", None, "admin"),
    ("POST", "/api/sync/jobs", {"connection_id": "{cid}", "job_type": "full"}, "operator"),
    ("GET", "/api/sync/jobs", None, "viewer"),
    ("GET", "/api/sync/jobs/{jid}", None, "viewer"),
    ("POST", "/api/sync/jobs/{jid}/cancel", None, "operator"),
    ("POST", "/api/sync/jobs/{fjid}/retry", None, "operator"),
    ("GET", "/api/sync/dead-letter", None, "viewer"),
    ("POST", "/api/sync/dead-letter/replay", {}, "operator"),
    ("GET", "/api/sync/statistics", None, "viewer"),
    ("GET", "/api/sync/webhooks", None, "viewer"),
    (
        "POST",
        "/api/sync/webhooks",
        {"name": "w{n}", "url": "https://93.184.215.14/hook", "event_types": ["patient.updated"]},
        "operator",
    ),
    ("GET", "/api/sync/webhooks/event-types", None, "viewer"),
    ("GET", "/api/sync/webhooks/inbound/stats", None, "viewer"),
    ("GET", "/api/sync/webhooks/{sid}", None, "viewer"),
    ("PATCH", "/api/sync/webhooks/{sid}", {"max_retries": 3}, "operator"),
    ("DELETE", "/api/sync/webhooks/{sid}", None, "operator"),
    ("POST", "/api/sync/webhooks/{sid}/test", None, "operator"),
    ("POST", "/api/sync/webhooks/{sid}/rotate-secret", {"grace_seconds": 60}, "operator"),
    ("GET", "/api/sync/webhooks/{sid}/deliveries", None, "viewer"),
    ("POST", "/api/sync/webhooks/deliveries/{did}/redeliver", None, "operator"),
    ("PUT", "/api/connections/{cid}/inbound-auth", {"auth": "websub_hmac"}, "admin"),
    ("GET", "/api/sync/conflicts", None, "viewer"),
    ("GET", "/api/sync/conflicts/{xid}", None, "viewer"),
    (
        "POST",
        "/api/sync/conflicts/{xid}/resolve",
        {"strategy": "use_local", "reason": "r", "write_back": False},
        "operator",
    ),
    (
        "POST",
        "/api/sync/conflicts/resolve-bulk",
        {"filter": {}, "strategy": "use_remote", "reason": "r", "write_back": False},
        "operator",
    ),
    ("GET", "/api/sync/conflicts/policies", None, "viewer"),
    (
        "PUT",
        "/api/sync/conflicts/policies",
        {"resource_type": "Basic", "strategy": "use_remote"},
        "admin",
    ),
    ("GET", "/api/alerts?status=open", None, "viewer"),
    ("POST", "/api/alerts/{aid}/acknowledge", None, "operator"),
    ("GET", "/api/alerts/thresholds", None, "viewer"),
    (
        "PUT",
        "/api/alerts/thresholds",
        {"kind": "queue_depth", "queue": "sync", "value": 10},
        "admin",
    ),
    ("GET", "/api/connections/{cid}/hl7/feeds", None, "viewer"),
    ("POST", "/api/connections/{cid}/hl7/feeds", {"sending_application": "APP{n}"}, "admin"),
    ("DELETE", "/api/connections/{cid}/hl7/feeds/{fid}", None, "admin"),
    ("GET", "/api/connections/{cid}/hl7/activity", None, "viewer"),
]


def test_every_route_is_listed():
    from fastapi.testclient import TestClient

    from holovitals_sync.api import create_api

    spec = TestClient(create_api()).get("/api/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    listed = {
        (
            m,
            p.replace("{cid}", "{connection_id}")
            .replace("{other}", "{connection_id}")
            .replace("{uid}", "{user_id}")
            .replace("{fjid}", "{job_id}")
            .replace("{jid}", "{job_id}")
            .replace("{sid}", "{subscription_id}")
            .replace("{did}", "{delivery_id}")
            .replace("{xid}", "{conflict_id}")
            .replace("{rid}", "{rule_id}")
            .replace("{aid}", "{alert_id}")
            .replace("{vid}", "{rule_id}")
            .replace("{rtype}", "{resource_type}")
            .replace("{pid}", "{remote_id}")
            .replace("{fid}", "{feed_id}")
            .split("?")[0],
        )
        for m, p, _, _ in ROUTES
    }
    # Logging in and out is open by design; revoking is covered in test_auth.
    documented -= {
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/logout"),
        ("DELETE", "/api/auth/tokens/{token_id}"),
    }
    # The inbound receiver takes no session or token: the sender's signature (or bearer
    # secret) authenticates it, covered in tests/integration/webhooks/test_inbound.py.
    documented -= {("POST", "/api/webhooks/inbound/{connection_id}")}
    # Testing a connection reaches out to the EHR; its roles are checked against the sandbox
    # in test_rules_records.py.
    documented -= {("POST", "/api/connections/{connection_id}/test")}
    assert documented == listed


def _fill(value, **ids):
    """Put the ids made for this round into a body: "{rid}" in a list becomes the int id."""
    if isinstance(value, str):
        filled = value.format(**ids)
        return int(filled) if value in {"{rid}", "{cid}"} else filled
    if isinstance(value, list):
        return [_fill(v, **ids) for v in value]
    return value


@pytest.mark.parametrize("role", [None, "viewer", "operator", "admin"])
def test_permission_matrix(world, role):
    for n, (method, path, body, needed) in enumerate(ROUTES):
        with session_scope() as session:
            cid, other = make_connection(session, f"A{n}").id, make_connection(session, f"B{n}").id
            jid = make_job(session, cid).id
            fjid = make_job(session, cid, JobStatus.FAILED).id
            # Sent to at "test": refused by the SSRF guard at once, no network needed.
            sid = make_subscription(session, url="http://10.0.0.1/hook").id
            did = make_delivery(session, sid).id
            xid = make_conflict(session, cid)
            rid = (
                DataTransformationService(session)
                .create(RuleIn(kind="redact", params={"path": "text"}))
                .id
            )
            vid = (
                ValidationRuleService(session)
                .add(
                    cid, {"check": "pattern", "name": "mrn", "path": "id", "pattern": "[a-z0-9-]+"}
                )
                .id
            )
            alert = Alert(kind=AlertKind.QUEUE_DEPTH, subject=f"queue:q{n}", message="m")
            session.add(alert)
            session.flush()
            aid = alert.id
            feed = HL7Feed(connection_id=cid, sending_application=f"FEED{n}")
            session.add(feed)
            session.flush()
            fid = feed.id
            etag = local_etag(session.get(SyncedRecord, make_record(session, cid)))
        url = path.format(
            cid=cid,
            other=other,
            uid=1,
            n=n,
            jid=jid,
            fjid=fjid,
            sid=sid,
            did=did,
            xid=xid,
            rid=rid,
            aid=aid,
            vid=vid,
            fid=fid,
            rtype="Patient",
            pid="p1",
        )
        payload = None
        if body is not None:
            payload = {k: _fill(v, n=n, cid=cid, rid=rid, vid=vid) for k, v in body.items()}
        # A local change names the version it read (If-Match), as any client must.
        headers = {**world.headers(role), "If-Match": etag}
        response = world.client.request(method, url, json=payload, headers=headers)
        allowed = needed is None or RANK[role] >= RANK[needed]
        if allowed:
            assert response.status_code < 400, (method, path, role, response.text)
        else:
            expected = 401 if role is None else 403
            assert response.status_code == expected, (method, path, role, response.text)
            assert response.json()["error"]["code"] in {"unauthenticated", "forbidden"}
