"""Ids never leave their place in a URL (issue #25, point 4).

`{"job_type": "patient", "patient_id": "../../../../outside-base"}` made a worker send
`GET /outside-base/$everything` with the connection's bearer token, and a signed inbound
event naming `Patient/..%2F..%2Fmetadata` did the same.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.fhir import ClientConfig, FhirClient, StaticToken
from holovitals_sync.fhir.ids import InvalidId
from holovitals_sync.models import InboundEvent, InboundStatus, SyncJob
from holovitals_sync.services.event_jobs import process_event
from tests.factories import make_connection

BAD_IDS = [
    "../../../../outside-base",
    "..",
    "a/b",
    "x?y=1",
    "x#frag",
    "%2e%2e",
    "Patient/1",
    "a" * 65,
    "",
    " pt-1",
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_patient_sync_for_an_id_that_is_no_fhir_id_is_refused(world, bad):
    with session_scope() as session:
        cid = make_connection(session).id
    refused = world.client.post(
        "/api/sync/jobs",
        headers=world.headers("operator"),
        json={"connection_id": cid, "job_type": "patient", "patient_id": bad},
    )
    assert refused.status_code == 422, refused.text
    assert bad not in refused.text or not bad  # the value is not echoed back
    with session_scope() as session:
        assert session.exec(select(SyncJob)).all() == []


def test_the_client_builds_no_url_with_a_segment_out_of_place():
    client = FhirClient(ClientConfig(base_url="https://ehr.example.org/fhir"), StaticToken("token"))
    assert client.url("Patient", "pt-1", "$everything") == (
        "https://ehr.example.org/fhir/Patient/pt-1/$everything"
    )
    for bad in ("..", ".", "a/b", "x?y", "%2e%2e", "", "x#y"):
        with pytest.raises(InvalidId):
            client.url("Patient", bad, "$everything")


def test_an_inbound_event_naming_a_path_is_failed_not_followed(world):
    with session_scope() as session:
        cid = make_connection(session).id
        event = InboundEvent(
            connection_id=cid,
            event_type="event-notification",
            patient_ref="Patient/..%2F..%2Fmetadata",
        )
        session.add(event)
        session.flush()
        event_id = event.id
    assert process_event(event_id) == InboundStatus.FAILED.value
    with session_scope() as session:
        assert session.exec(select(SyncJob)).all() == []  # nothing queued, nothing sent
