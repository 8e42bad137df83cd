"""The webhook modal's save path: the service's validation at each field, secret once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import Role, WebhookSubscription
from holovitals_sync.services.crypto import decrypt
from holovitals_sync.ui.state import webhook_form as form
from tests.factories import make_connection, make_user

PUBLIC = "https://93.184.215.14/hook"


@pytest.fixture
def operator(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    migrations.upgrade(database_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    with session_scope() as session:
        principal = make_user(session, "op", Role.OPERATOR)
    yield principal
    get_engine().dispose()


def _form(**changes: object) -> dict:
    events = {"sync.completed": True, "conflict.detected": True, "patient.created": False}
    return {
        "name": "Ward board",
        "url": PUBLIC,
        "algorithm": "hmac-sha512",
        "events": events,
        "connection": "any",
        "resource_types": "Patient, Observation ",
        "timeout": "7.5",
        "retries": "3",
    } | changes


def _count() -> int:
    with session_scope() as session:
        return len(session.exec(select(WebhookSubscription)).all())


def test_invalid_fields_come_back_at_the_field_and_nothing_is_stored(operator) -> None:
    sub_id, secret, errors = form.save(
        operator, None, _form(url="not a url", events={}, timeout="0", retries="lots")
    )
    assert (sub_id, secret) == (None, "")
    assert set(errors) == {"url", "event_types", "timeout_seconds", "max_retries"}
    assert errors["event_types"] == "Choose at least one event type"
    refused = form.save(operator, None, _form(url="http://127.0.0.1:9/hook"))[2]
    assert refused["url"].startswith("Refused: host 127.0.0.1 resolves to an internal address")
    assert form.save(operator, None, _form(connection="999"))[2] == {
        "filter_connection_id": "No such connection"
    }
    assert _count() == 0


def test_create_returns_the_secret_once_and_edit_changes_only_the_form(operator) -> None:
    with session_scope() as session:
        connection_id = make_connection(session).id
    sub_id, secret, errors = form.save(operator, None, _form(connection=str(connection_id)))
    assert errors == {} and secret.startswith("whsec_")
    loaded = form.load_form(sub_id)
    assert "secret" not in str(loaded)
    assert loaded["events"]["sync.completed"] and not loaded["events"]["patient.created"]
    assert (loaded["connection"], loaded["resource_types"], loaded["timeout"]) == (
        str(connection_id),
        "Patient, Observation",
        "7.5",
    )
    again = form.save(
        operator,
        sub_id,
        {**_form(), **loaded, "events": {"sync.failed": True}, "retries": "9", "connection": "any"},
    )
    assert again == (sub_id, "", {})
    with session_scope() as session:
        row = session.get(WebhookSubscription, sub_id)
        assert (row.event_types, row.max_retries, row.algorithm.value) == (
            ["sync.failed"],
            9,
            "hmac-sha512",
        )
        assert decrypt(row.secret_encrypted) == secret  # editing never replaces the secret
    rotated = form.rotate(operator, sub_id)
    assert rotated.startswith("whsec_") and rotated != secret


def test_a_blank_number_is_an_error_when_editing_too(operator) -> None:
    sub_id = form.save(operator, None, _form())[0]
    errors = form.save(operator, sub_id, _form(timeout=" ", name=""))[2]
    assert set(errors) == {"timeout_seconds", "name"}
    with session_scope() as session:
        row = session.get(WebhookSubscription, sub_id)
        assert (row.timeout_seconds, row.name) == (7.5, "Ward board")
