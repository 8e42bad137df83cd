"""Feeds are configured through the API (admin), seen by every role, and the activity route
shows what the feed does without a byte of the messages' content."""

from __future__ import annotations

import httpx
import pytest

from holovitals_sync.db import session_scope
from tests.factories import make_connection
from tests.integration.webhooks.conftest import backend  # noqa: F401 - the API in uvicorn
from tests.waiting import wait_for

from .conftest import adt, send

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_admin_maps_a_sender_and_the_feed_flows(hl7_db, backend, listener):  # noqa: F811
    with session_scope() as session:
        cid = int(make_connection(session, "API feed").id)
    url = f"{backend.url}/api/connections/{cid}/hl7"
    body = {
        "sending_application": "EPICADT",
        "sending_facility": "GOODHEALTH",
        "identifier_systems": {"HOSP": "urn:oid:1.2.3.4"},
    }

    assert send(listener, adt("A08", "BEFORE")).code == "AR"  # not mapped yet
    assert (
        httpx.post(f"{url}/feeds", json=body, headers=backend.headers("operator")).status_code
        == 403
    )
    created = httpx.post(f"{url}/feeds", json=body, headers=backend.headers("admin"))
    assert created.status_code == 201, created.text
    assert (
        httpx.post(f"{url}/feeds", json=body, headers=backend.headers("admin")).status_code == 409
    )
    bad = httpx.post(
        f"{url}/feeds",
        json={**body, "sending_application": "A|B"},
        headers=backend.headers("admin"),
    )
    assert bad.status_code == 422 and "sending_application" in bad.text
    listed = httpx.get(f"{url}/feeds", headers=backend.headers("viewer")).json()
    assert [f["sending_application"] for f in listed] == ["EPICADT"]

    wait_for(lambda: send(listener, adt("A08", "AFTER")).code == "AA", timeout=10, interval=0.5)
    activity = httpx.get(f"{url}/activity", headers=backend.headers("viewer"))
    assert activity.status_code == 200
    data = activity.json()
    assert [m["control_id"] for m in data["messages"]] == ["AFTER"]
    assert data["stored"] == {"received": 1}
    assert not any(phi in activity.text for phi in ("DOE", "JANE", "MRN0000001", "19700101"))

    feed_id = created.json()["id"]
    assert (
        httpx.delete(f"{url}/feeds/{feed_id}", headers=backend.headers("admin")).status_code == 204
    )
    assert httpx.get(f"{url}/feeds", headers=backend.headers("viewer")).json() == []
    assert (
        httpx.get(
            f"{backend.url}/api/connections/999/hl7/feeds", headers=backend.headers("viewer")
        ).status_code
        == 404
    )
