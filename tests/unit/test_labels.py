"""The dashboard's words for machine values (services/labels.py)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from holovitals_sync.services import labels

CONNECTIONS = {1: "Sandbox EHR (demo)"}
SUBSCRIPTIONS = {7: "Ward board"}


def test_alert_subjects_read_as_sentences_with_names() -> None:
    title = labels.alert_title("connection:1:resource:failures", CONNECTIONS, SUBSCRIPTIONS)
    assert title == "Sandbox EHR (demo): repeated failures of resource syncs"
    assert (
        labels.alert_title("subscription:7", CONNECTIONS, SUBSCRIPTIONS)
        == "Webhook subscription “Ward board” switched off"
    )
    assert (
        labels.alert_title("connection:1:conflicts", CONNECTIONS, {})
        == "Sandbox EHR (demo): high-severity conflicts waiting"
    )
    assert (
        labels.alert_title("connection:1:hl7-held", CONNECTIONS, {})
        == "Sandbox EHR (demo): HL7 ADT messages held"
    )
    assert labels.alert_title("queue:sync", {}, {}) == "Sync queue: jobs piling up"
    assert labels.alert_title("job:42", {}, {}) == "Sync job #42 is running long"
    assert labels.alert_title("connection:9:full:failures", CONNECTIONS, {}).startswith(
        "connection 9 (deleted)"
    )
    assert labels.alert_title("something:new", {}, {}) == "something:new"


def test_stored_messages_name_connections_and_subscriptions() -> None:
    text = "the last 3 full jobs of connection 1 failed; webhook subscription 7 was disabled"
    assert labels.with_names(text, CONNECTIONS, SUBSCRIPTIONS) == (
        "the last 3 full jobs of Sandbox EHR (demo) failed; "
        "webhook subscription “Ward board” was disabled"
    )


class _Form(BaseModel):
    url: str = Field(pattern=r"^https?://")
    name: str = Field(min_length=1, max_length=200)
    retries: int = Field(ge=0, le=10)


def _messages(**data: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as error:
        _Form.model_validate({"url": "https://x", "name": "n", "retries": 1, **data})
    return {str(e["loc"][0]): labels.field_message(e) for e in error.value.errors()}


def test_pydantic_messages_become_plain_instructions() -> None:
    assert _messages(url="ftp://x") == {"url": "Enter a URL starting with http:// or https://"}
    assert _messages(name="x" * 10_000) == {"name": "At most 200 characters"}
    assert _messages(name="") == {"name": "Required"}
    assert _messages(retries="many") == {"retries": "Enter a whole number"}
    assert _messages(retries=11) == {"retries": "At most 10"}
    assert (
        labels.field_message({"type": "value_error", "msg": "Value error, no such event type: x"})
        == "No such event type: x"
    )


def test_audit_details_and_targets_in_words() -> None:
    assert labels.details_text({}) == "—"
    assert (
        labels.details_text(
            {"event_types": ["sync.completed"], "active": True, "filter_connection_id": None}
        )
        == "active: yes; event types: sync.completed; filter connection id: none"
    )
    names = {("connection", "1"): "Sandbox EHR (demo)"}
    assert labels.target_label("connection", "1", names) == "connection “Sandbox EHR (demo)”"
    assert labels.target_label("sync_job", "4", names) == "sync job #4"
    assert labels.target_label(None, None, names) == "—"


def test_counts_and_sentences() -> None:
    assert labels.plural(1, "connection") == "1 connection"
    assert labels.plural(2, "connection") == "2 connections"
    assert (
        labels.sentence("that subscription no longer exists")
        == "That subscription no longer exists."
    )
    assert labels.sentence("Sync job 3 queued.") == "Sync job 3 queued."
