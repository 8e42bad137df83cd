"""Reading ids from inbound bodies: R4 and R4B backport notifications, vendor events."""

from __future__ import annotations

import orjson
import pytest

from holovitals_sync.sandbox import notify
from holovitals_sync.services.webhooks.notifications import MalformedEvent, describe


def test_r4_full_resource_takes_the_patient_from_the_resource():
    obs = {"resourceType": "Observation", "id": "obs-9", "subject": {"reference": "Patient/pt-7"}}
    bundle = notify.subscription_bundle(
        "event-notification", "full-resource", "Observation/obs-9", obs, "https://ehr/fhir"
    )
    info = describe(orjson.dumps(bundle))
    assert (info.event_type, info.resource_type, info.resource_id, info.patient_ref) == (
        "event-notification",
        "Observation",
        "obs-9",
        "Patient/pt-7",
    )
    assert info.key == f"bundle:{bundle['id']}" and info.source == "fhir_subscription"


def test_r4_id_only_empty_and_heartbeat():
    info = describe(
        orjson.dumps(
            notify.subscription_bundle(
                "event-notification", "id-only", "Patient/pt-1", base_url="https://ehr/fhir"
            )
        )
    )
    assert (info.resource_type, info.resource_id, info.patient_ref) == (
        "Patient",
        "pt-1",
        "Patient/pt-1",
    )
    empty = describe(orjson.dumps(notify.subscription_bundle("event-notification", "empty")))
    assert (empty.resource_type, empty.patient_ref) == (None, None)
    assert describe(orjson.dumps(notify.subscription_bundle("heartbeat"))).event_type == "heartbeat"


def test_r4b_subscription_status():
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {
                "resource": {
                    "resourceType": "SubscriptionStatus",
                    "type": "event-notification",
                    "notificationEvent": [
                        {"eventNumber": "3", "focus": {"reference": "Patient/p9"}}
                    ],
                }
            }
        ],
    }
    info = describe(orjson.dumps(bundle))
    assert info.patient_ref == "Patient/p9" and info.key.startswith("sha256:")


def test_vendor_event():
    event = notify.vendor_event("Encounter/e1", patient="Patient/p2")
    info = describe(orjson.dumps(event))
    assert (info.source, info.event_type, info.resource_type, info.patient_ref, info.key) == (
        "vendor_event",
        "encounter.updated",
        "Encounter",
        "Patient/p2",
        f"event:{event['eventId']}",
    )


def test_a_delete_or_a_focus_without_content_is_read_again_after_the_sync():
    obs = {"resourceType": "Observation", "id": "obs-9", "subject": {"reference": "Patient/pt-7"}}
    with_content = describe(
        orjson.dumps(
            notify.subscription_bundle(
                "event-notification", "full-resource", "Observation/obs-9", obs
            )
        )
    )
    id_only = describe(
        orjson.dumps(
            notify.subscription_bundle("event-notification", "id-only", "Observation/obs-9")
        )
    )
    deleted = describe(
        orjson.dumps(
            notify.subscription_bundle(
                "event-notification", "full-resource", "Observation/obs-9", obs, deleted=True
            )
        )
    )
    empty = describe(orjson.dumps(notify.subscription_bundle("event-notification", "empty")))
    assert (with_content.recheck, id_only.recheck, deleted.recheck, empty.recheck) == (
        False,
        True,
        True,
        False,
    )
    # A deleted focus carries no resource, so it names no patient: the record held here will.
    assert (deleted.resource_type, deleted.resource_id, deleted.patient_ref) == (
        "Observation",
        "obs-9",
        None,
    )


@pytest.mark.parametrize(
    ("event_type", "recheck"),
    [
        ("observation.deleted", True),
        ("Observation.Delete", True),
        ("ResultRemoved", True),
        ("observation.updated", False),
        ("observation.created", False),
    ],
)
def test_a_vendor_event_announcing_a_delete_is_read_again(event_type, recheck):
    event = notify.vendor_event("Observation/o1", event_type=event_type, patient="Patient/p2")
    assert describe(orjson.dumps(event)).recheck is recheck


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        b"[]",
        b'{"resourceType": "Bundle"}',
        b'{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Parameters"}}]}',
        b'{"x": 1}',
    ],
)
def test_malformed(body):
    with pytest.raises(MalformedEvent):
        describe(body)
