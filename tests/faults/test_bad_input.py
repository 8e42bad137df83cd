"""Hypothesis-generated bodies against the inbound webhook receiver and the REST API's
write routes: never a 5xx, every refusal a 4xx in the one error shape, and nothing stored
from a refused request (row counts unchanged)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from holovitals_sync.api import create_api
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import InboundAuth, Role
from holovitals_sync.services import audit
from holovitals_sync.services.webhooks import subscriptions
from holovitals_sync.services.webhooks.inbound_config import InboundAuthIn, set_inbound_auth
from tests.factories import make_connection, make_token, make_user

pytestmark = pytest.mark.timeout(300)
# CI runs the short form; HOLOVITALS_FAULTS_LONG=1 searches four times as wide.
SCALE = 4 if os.environ.get("HOLOVITALS_FAULTS_LONG") == "1" else 1
EXAMPLES = 100 * SCALE
# Tables a refused request must leave as they were.
WATCHED = (
    "inbound_event",
    "sync_job",
    "ehr_connection",
    "webhook_subscription",
    "webhook_delivery",
    "transformation_rule",
    "synced_record",
    "record_error",
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
fhir_words = st.sampled_from(
    [
        "Bundle",
        "Patient",
        "Observation",
        "Parameters",
        "SubscriptionStatus",
        "subscription-notification",
        "history",
        "event-notification",
        "handshake",
        "heartbeat",
        "id-only",
        "full-resource",
        "Patient/pt-00001",
        "",
        "0",
        "-1",
    ]
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "resourceType": fhir_words | json_values,
        "type": fhir_words | json_values,
        "id": st.text(max_size=70) | json_values,
        "eventId": st.text(max_size=300) | json_values,
        "eventType": fhir_words | json_values,
        "resourceId": st.text(max_size=300) | json_values,
        "patient": fhir_words | json_values,
        "timestamp": st.text(max_size=30) | json_values,
        "entry": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "fullUrl": fhir_words | json_values,
                    "resource": json_values
                    | st.fixed_dictionaries(
                        {"resourceType": fhir_words},
                        optional={"parameter": json_values, "id": json_values},
                    ),
                },
            ),
            max_size=3,
        ),
    },
)


def dumps(value: Any) -> bytes:
    # The standard library writes integers beyond 64 bits too: a sender may.
    return json.dumps(value).encode()


bodies = (
    st.binary(max_size=300)
    | json_values.map(dumps)
    | shaped.map(dumps)
    | st.text(max_size=200).map(str.encode)
)


# Refusals are counted as rows holding only a reason (status rejected or duplicate): by
# design, and the rows hold no part of the body, which is what "stored nothing" means here.
KEPT_EVENTS = (
    "SELECT count(*) FROM inbound_event WHERE status IN ('received', 'processed', 'failed')"
)


def counts() -> dict[str, object]:
    with get_engine().connect() as conn:
        found: dict[str, object] = {
            t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in WATCHED
            if t != "inbound_event"
        }
        found["inbound_event"] = conn.execute(sa.text(KEPT_EVENTS)).scalar_one()
        # Custom validation rules live in a JSON column, not rows of their own.
        found["validation_rules"] = str(
            conn.execute(
                sa.text("SELECT id, validation_rules FROM ehr_connection ORDER BY id")
            ).all()
        )
        return found


def assert_clear_4xx(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and isinstance(error["message"], str) and error["message"]


# Port 9 (discard) on loopback: nothing listens, so the test-connection and test-send routes
# get a refused connection at once, and no fuzzed request ever leaves the machine.
DEAD_END = "http://127.0.0.1:9"


@pytest.fixture
def api(
    fault_env: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, dict[str, int], str, dict[str, str]]]:
    """The API; a connection (plain HMAC inbound scheme) and a subscription, both pointing
    at a dead loopback port; the inbound secret; an admin's headers."""
    monkeypatch.setenv("HOLOVITALS_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    get_settings.cache_clear()
    system = audit.Actor.system("tests")
    with session_scope() as session:
        admin = make_user(session, "fuzz-admin", Role.ADMIN)
        token = make_token(session, admin)
        connection = make_connection(session, "Fuzzed Hospital", base_url=f"{DEAD_END}/fhir")
        secret = set_inbound_auth(
            session,
            connection=connection,
            data=InboundAuthIn(auth=InboundAuth.PLAIN_HMAC),
            actor=system,
        ).secret
        subscription, _ = subscriptions.create(
            session,
            data=subscriptions.SubscriptionIn(
                name="dead end",
                url=f"{DEAD_END}/hook",
                event_types=["patient.updated"],
                timeout_seconds=1,
            ),
            actor=system,
        )
        ids = {"cid": connection.id, "sid": subscription.id}
    with TestClient(create_api(), raise_server_exceptions=False) as client:
        yield client, ids, secret, {"Authorization": f"Bearer {token}"}


def _fuzz_settings(examples: int = EXAMPLES) -> settings:
    # derandomize: the same examples on every run, so CI is repeatable.
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


def test_signed_inbound_bodies_never_5xx_and_refusals_store_nothing(api):
    client, ids, secret, _ = api
    connection_id = ids["cid"]
    url = f"/api/webhooks/inbound/{connection_id}"

    @given(body=bodies)
    @_fuzz_settings()
    def run(body: bytes) -> None:
        before = counts()
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        response = client.post(
            url,
            content=body,
            headers={"X-Signature": signature, "Content-Type": "application/json"},
        )
        assert_clear_4xx(response)
        if response.status_code != 202:
            assert counts() == before
        else:
            assert counts()["inbound_event"] == before["inbound_event"] + 1

    run()


def test_unsigned_or_misdirected_inbound_bodies_are_refused_and_store_nothing(api):
    client, ids, _, _ = api
    connection_id = ids["cid"]

    @given(
        body=bodies,
        target=st.sampled_from([connection_id, connection_id + 1000]),
        signature=st.text(max_size=80),
    )
    @_fuzz_settings(40 * SCALE)
    def run(body: bytes, target: int, signature: str) -> None:
        before = counts()
        headers = {"X-Signature": signature.encode("ascii", "ignore").decode()}
        response = client.post(f"/api/webhooks/inbound/{target}", content=body, headers=headers)
        assert_clear_4xx(response)
        assert response.status_code in (400, 401, 404), response.status_code
        assert counts() == before

    run()


# (method, path, examples): the test-connection route tries the dead end with the FHIR
# client's own retries (seconds per example), so it gets few examples; its body is ignored.
WRITE_ROUTES = [
    ("POST", "/api/sync/jobs", 25),
    ("POST", "/api/connections", 25),
    ("PATCH", "/api/connections/{cid}", 25),
    ("PUT", "/api/connections/{cid}/inbound-auth", 25),
    ("POST", "/api/sync/webhooks", 25),
    ("POST", "/api/transformations/rules", 25),
    ("POST", "/api/transformations/rules/dry-run", 25),
    ("POST", "/api/connections/{cid}/validation-rules", 25),
    ("POST", "/api/connections/{cid}/validation-rules/check", 25),
    ("POST", "/api/sync/conflicts/resolve-bulk", 25),
    ("POST", "/api/sync/dead-letter/replay", 25),
    ("POST", "/api/users", 25),
    ("POST", "/api/connections/{cid}/test", 3),
    ("POST", "/api/connections/999999/test", 25),
    ("POST", "/api/sync/webhooks/{sid}/test", 25),
    ("POST", "/api/sync/webhooks/999999/test", 25),
]


@pytest.mark.parametrize(("method", "path", "examples"), WRITE_ROUTES)
def test_rest_write_routes_answer_bad_bodies_with_clear_4xx(api, method, path, examples):
    client, ids, _, headers = api
    url = path.format(**ids)

    @given(body=json_values | shaped)
    @_fuzz_settings(examples * SCALE)
    def run(body: Any) -> None:
        before = counts()
        response = client.request(
            method,
            url,
            content=dumps(body),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert_clear_4xx(response)
        if response.status_code >= 400:
            assert counts() == before

    run()
