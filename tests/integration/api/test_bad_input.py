"""Bad input gets a 4xx naming what is wrong, never a 500, and stores nothing (issue #25,
point 11): each case here answered 500 once."""

from __future__ import annotations

import orjson
import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import EHRConnection, TransformationRule, WebhookSubscription
from holovitals_sync.sandbox import notify
from holovitals_sync.services.transformation import DataTransformationService, RuleIn
from tests.factories import make_connection, make_subscription


def _inbound(world) -> tuple[int, str]:
    with session_scope() as session:
        cid = make_connection(session).id
    answer = world.client.put(
        f"/api/connections/{cid}/inbound-auth",
        headers=world.headers("admin"),
        json={"auth": "holovitals_hmac"},
    )
    assert answer.status_code == 200, answer.text
    return cid, answer.json()["secret"]


def test_an_inbound_signature_with_a_superscript_digit_is_refused(world):
    cid, _ = _inbound(world)
    answer = world.client.post(
        f"/api/webhooks/inbound/{cid}",
        content=b"{}",
        headers={
            "Content-Type": "application/json",
            "X-HoloVitals-Signature": "t=²,v1=00".encode("latin-1"),
        },
    )  # as the attacker sent it
    assert answer.status_code == 401, answer.text


@pytest.mark.parametrize("entry", [{}, {"a": 1}, [1, 2], "x", [{"resource": 5}]])
def test_a_signed_bundle_with_a_broken_entry_list_is_a_400(world, entry):
    cid, secret = _inbound(world)
    body = orjson.dumps({"resourceType": "Bundle", "type": "history", "entry": entry})
    answer = world.client.post(
        f"/api/webhooks/inbound/{cid}",
        content=body,
        headers={
            "Content-Type": "application/fhir+json",
            **notify.sign(body, secret, "holovitals"),
        },
    )
    assert answer.status_code == 400, answer.text


def _patch_targets(world) -> list[tuple[str, list[str]]]:
    with session_scope() as session:
        cid = make_connection(session, "Null target").id
        sid = make_subscription(session).id
        rid = (
            DataTransformationService(session)
            .create(RuleIn(kind="redact", params={"path": "text"}))
            .id
        )
    return [
        (
            f"/api/connections/{cid}",
            [
                "name",
                "base_url",
                "client_id",
                "auth_method",
                "scopes",
                "vendor_params",
                "concurrency_limit",
                "validation_mode",
                "status",
            ],
        ),
        (
            f"/api/sync/webhooks/{sid}",
            [
                "name",
                "url",
                "algorithm",
                "event_types",
                "timeout_seconds",
                "max_retries",
                "backoff_seconds",
                "active",
            ],
        ),
        (f"/api/transformations/rules/{rid}", ["kind", "params", "resource_type", "direction"]),
        ("/api/users/1", ["role", "active", "password"]),
    ]


def _state() -> tuple:
    with session_scope() as session:
        return (
            [c.model_dump() for c in session.exec(select(EHRConnection))],
            [s.model_dump() for s in session.exec(select(WebhookSubscription))],
            [r.model_dump() for r in session.exec(select(TransformationRule))],
        )


def test_null_for_a_field_that_cannot_be_empty_is_a_422_naming_it(world):
    for url, fields in _patch_targets(world):
        before = _state()
        for name in fields:
            answer = world.client.patch(url, headers=world.headers("admin"), json={name: None})
            assert answer.status_code == 422, (url, name, answer.text)
            assert [f["field"] for f in answer.json()["error"]["fields"]] == [f"body.{name}"]
        assert _state() == before, url
    # Where null means something (clear the schedule) it is taken.
    with session_scope() as session:
        cid = make_connection(session, "Scheduled", sync_schedule="*/5 * * * *").id
    cleared = world.client.patch(
        f"/api/connections/{cid}", headers=world.headers("admin"), json={"sync_schedule": None}
    )
    assert cleared.status_code == 200 and cleared.json()["sync_schedule"] is None


BAD_URLS = [
    "http://[::1/x",
    "http://[::1/fhir",
    "http://ehr.example.org/\x00fhir",
    "http://ehr.example.org/f hir",
    "https://",
    "http://ehr.example.org:99999/fhir",
]


def test_malformed_urls_are_422_and_nothing_is_stored(world):
    before = _state()
    for url in BAD_URLS:
        made = world.client.post(
            "/api/connections",
            headers=world.headers("admin"),
            json={"name": f"Bad {url!r}", "vendor": "generic", "base_url": url},
        )
        assert made.status_code == 422, (url, made.text)
        assert made.json()["error"]["fields"][0]["field"] == "body.base_url"
        hook = world.client.post(
            "/api/sync/webhooks",
            headers=world.headers("operator"),
            json={"name": f"Bad {url!r}", "url": url, "event_types": ["sync.completed"]},
        )
        assert hook.status_code in (400, 422), (url, hook.text)
    assert _state() == before


def test_a_femtosecond_timeout_is_refused(world):
    answer = world.client.post(
        "/api/sync/webhooks",
        headers=world.headers("operator"),
        json={
            "name": "tiny",
            "url": "https://93.184.215.14/hook",
            "event_types": ["sync.completed"],
            "timeout_seconds": 5e-324,
        },
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["fields"][0]["field"] == "body.timeout_seconds"


@pytest.mark.parametrize("api_db", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("big", [2**31, 10**12, 10**19])
def test_an_id_beyond_the_database_s_integers_names_nothing(world, big):
    """PostgreSQL's keys are 32-bit and SQLite's 64-bit: a larger id in a path is no row
    (404) or a number the database cannot hold (422), never a 500 (PostgreSQL's answer)."""
    for path in (f"/api/sync/jobs/{big}", f"/api/connections/{big}"):
        answer = world.client.get(path, headers=world.headers("viewer"))
        assert answer.status_code in (404, 422), (path, answer.text)
    body, _ = notify.build("event-notification", "id-only", "Patient/pt-00001", None)
    event = world.client.post(f"/api/webhooks/inbound/{big}", content=body)
    assert event.status_code == 404, event.text  # no such connection
