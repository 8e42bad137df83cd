"""The HL7 ADT feed card in a browser against `up --demo`: an admin maps a sender, a real
sender (python-hl7 over MLLP to the demo's listener) sends an admission, and the card shows
the sender connected, the AA counted and the stored message — no name, MRN or birth date on
screen; a viewer sees the same without the controls."""

from __future__ import annotations

import uuid

import pytest
from hl7.client import MLLPClient
from playwright.sync_api import Page, expect

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e
WAIT = 120_000
MESSAGE = (
    "MSH|^~\\&|{app}|NORTH|HOLOVITALS|HV|20260101120000||ADT^A04^ADT_A01|{ctl}|P|2.5\r"
    "EVN|A04|20260101120000\r"
    "PID|1||MRN0000001^^^SANDBOX&2.16.840.1.113883.3.7418.1.1&ISO^MR||ROE^RICHARD||"
    "19610203|M\rPV1|1|O\r"
)


def test_admin_maps_a_sender_and_sees_the_feed(demo_app, page: Page):
    api = demo_app.api_client("admin")
    created = api.post(
        "/connections",
        json={
            "name": f"ADT {uuid.uuid4().hex[:6]}",
            "vendor": "generic",
            "base_url": demo_app.fhir,
        },
    )
    created.raise_for_status()
    cid, app = created.json()["id"], f"ADT{uuid.uuid4().hex[:6].upper()}"

    demo_app.sign_in(page, "admin", "/connections")
    page.goto(f"{demo_app.url}/connections?id={cid}")
    expect(page.locator("#hl7-feed")).to_be_visible(timeout=WAIT)
    page.fill("#hl7-new-application", app)
    page.click("#hl7-add-feed")
    expect(page.locator("#hl7-feeds .hl7-feed-row")).to_have_count(1, timeout=WAIT)
    expect(page.locator("#hl7-feeds")).to_contain_text(app)

    port = int(demo_app.env["HOLOVITALS_MLLP_PORT"])
    with MLLPClient("127.0.0.1", port) as client:
        ack = client.send_message(MESSAGE.format(app=app, ctl="UI-1"))
        assert b"MSA|AA|UI-1" in ack
        page.wait_for_timeout(2500)  # the listener's snapshot of connected senders
        page.click("#hl7-refresh")
        expect(page.locator("#hl7-senders")).to_contain_text(f"{app}|NORTH", timeout=WAIT)
    expect(page.locator("#hl7-acks")).to_contain_text("AA 1", timeout=WAIT)
    expect(page.locator("#hl7-messages")).to_contain_text("UI-1", timeout=WAIT)
    expect(page.locator("#hl7-messages")).to_contain_text("ADT^A04")
    card = page.locator("#hl7-feed").inner_text()
    assert not any(phi in card for phi in ("ROE", "RICHARD", "MRN0000001", "19610203"))
    screenshot(page, "hl7-feed")


def test_a_viewer_sees_the_feed_without_its_controls(demo_app, page: Page):
    api = demo_app.api_client("admin")
    created = api.post(
        "/connections",
        json={
            "name": f"ADT {uuid.uuid4().hex[:6]}",
            "vendor": "generic",
            "base_url": demo_app.fhir,
        },
    )
    created.raise_for_status()
    cid, app = created.json()["id"], f"ADT{uuid.uuid4().hex[:6].upper()}"
    api.post(f"/connections/{cid}/hl7/feeds", json={"sending_application": app}).raise_for_status()
    with MLLPClient("127.0.0.1", int(demo_app.env["HOLOVITALS_MLLP_PORT"])) as client:
        for _ in range(20):  # the listener looks a new sender up within a quarter second
            if b"MSA|AA|UI-2" in client.send_message(MESSAGE.format(app=app, ctl="UI-2")):
                break
            page.wait_for_timeout(300)
    demo_app.sign_in(page, "viewer", "/connections")
    page.goto(f"{demo_app.url}/connections?id={cid}")
    expect(page.locator("#hl7-messages")).to_contain_text("UI-2", timeout=WAIT)
    expect(page.locator("#hl7-feeds")).to_contain_text(app)
    expect(page.locator("#hl7-add-feed")).to_have_count(0)


def test_the_demo_feed_turns_admissions_into_synced_patients(demo_app):
    """`up --demo`'s story ends with a clinic day whose ADT feed reaches the listener: the
    demo connection's feed shows the messages processed and the patients synced."""
    import time

    api = demo_app.api_client("viewer")
    deadline = time.monotonic() + 900  # the story first runs a full sync and a conflict
    while time.monotonic() < deadline:
        activity = api.get("/connections/1/hl7/activity").json()
        done = [m for m in activity["messages"] if m["status"] == "processed" and m["job_id"]]
        if done:
            break
        time.sleep(2)
    else:
        raise AssertionError(f"no processed ADT message on the demo connection: {activity}")
    assert activity["acks_today"]["AA"] >= 4
    job = api.get(f"/sync/jobs/{done[0]['job_id']}").json()
    assert job["job_type"] == "patient" and job["patient_id"] == done[0]["patient_id"]
