"""The Conflicts tab in a browser: a real conflict from the sandbox, resolved in the modal.

The conflict is made the way it happens in practice: sync the demo connection, change one
patient's birthDate in HoloVitals (the local copy, marked dirty) and differently at the
sandbox EHR, then run a bidirectional sync: the outbound write meets the EHR's newer
version and the conflict is recorded.
"""

from __future__ import annotations

import itertools
import re
from contextlib import closing

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session, select

from holovitals_sync.db import create_db_engine
from holovitals_sync.models import SyncedRecord
from holovitals_sync.services.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_NAME
from tests.e2e.conftest import DemoApp, screenshot
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000
_YEARS = itertools.count(1801)  # one year per date, never used twice in a session


def _sync(api: httpx.Client, connection_id: int, direction: str) -> dict:
    started = api.post(
        "/sync/jobs",
        json={
            "connection_id": connection_id,
            "job_type": "resource",
            "resource_type": "Patient",
            "direction": direction,
            "priority": "high",
        },
    )
    started.raise_for_status()
    job_id = started.json()["id"]

    def finished() -> dict | None:
        job = api.get(f"/sync/jobs/{job_id}").json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    job = wait_for(finished, timeout=240, interval=1)
    assert job["status"] == "completed", job["last_error"]
    return job


def _edit_locally(demo_app, connection_id: int, birth_date: str) -> str:
    """What a HoloVitals-side edit leaves behind: a changed local copy marked dirty."""
    engine = create_db_engine(f"sqlite:///{demo_app.data / 'holovitals.db'}")
    try:
        with Session(engine) as session:
            record = session.exec(
                select(SyncedRecord)
                .where(
                    SyncedRecord.connection_id == connection_id,
                    SyncedRecord.resource_type == "Patient",
                    ~SyncedRecord.conflict_pending,
                )
                .order_by(SyncedRecord.remote_id)
            ).first()
            record.local_body = {**record.local_copy, "birthDate": birth_date}
            record.dirty = True
            session.add(record)
            session.commit()
            return record.remote_id
    finally:
        engine.dispose()


def _edit_at_sandbox(fhir: str, patient_id: str, birth_date: str) -> None:
    token = httpx.post(
        f"{fhir}/auth/token",
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        data={"grant_type": "client_credentials", "scope": "system/*.read system/*.write"},
    )
    token.raise_for_status()
    headers = {
        "Authorization": f"Bearer {token.json()['access_token']}",
        "Content-Type": "application/fhir+json",
    }
    patient = httpx.get(f"{fhir}/Patient/{patient_id}", headers=headers).json()
    patient["birthDate"] = birth_date
    httpx.put(f"{fhir}/Patient/{patient_id}", json=patient, headers=headers).raise_for_status()


@pytest.fixture
def conflict(demo_app) -> dict:
    """An open birthDate conflict on one demo patient: its id and the three dates."""
    # Dates no demo patient has and no earlier conflict of this session used: a remote date
    # equal to the record's last agreed one would be no change at the EHR, and no conflict.
    local, remote = f"{next(_YEARS)}-01-11", f"{next(_YEARS)}-02-12"
    with closing(demo_app.api_client("operator")) as api:
        (demo,) = [c for c in api.get("/connections").json() if c["name"] == DEMO_NAME]
        _sync(api, demo["id"], "inbound")
        patient_id = _edit_locally(demo_app, demo["id"], local)
        _edit_at_sandbox(demo_app.fhir, patient_id, remote)
        _sync(api, demo["id"], "bidirectional")
        found = api.get(
            "/sync/conflicts", params={"status": "open", "connection_id": demo["id"]}
        ).json()
    (mine,) = [c for c in found["items"] if c["remote_id"] == patient_id]
    return {"id": mine["id"], "patient": patient_id, "local": local, "remote": remote}


def _open(demo_app: DemoApp, page: Page, role: str) -> None:
    """Sign in and wait for the page itself: `sign_in`'s URL check also matches
    `/signin?next=/conflicts`, so it can return while the sign-in is still under way."""
    demo_app.sign_in(page, role, "/conflicts")
    expect(page.locator("#page-title")).to_have_text("Conflicts", timeout=120_000)


def test_operator_resolves_a_sandbox_conflict_in_the_modal(demo_app, page, conflict) -> None:
    _open(demo_app, page, "operator")
    row = page.locator(f"#conflict-row-{conflict['id']}")
    expect(row).to_contain_text(f"Patient/{conflict['patient']}", timeout=TIMEOUT)
    expect(row).to_contain_text("birthDate")
    # What happened, in words; the machine kind stays in the tooltip.
    kind = row.get_by_text("The EHR changed the record after we read it")
    expect(kind).to_have_attribute("title", "stale_write")
    screenshot(page, "conflicts-tab")
    row.locator(".conflict-open").click()

    modal = page.locator("#conflict-modal")
    element = modal.locator(".conflict-element", has_text="birthDate")
    expect(element.locator(".conflict-local.differs")).to_contain_text(
        conflict["local"], timeout=TIMEOUT
    )
    expect(element.locator(".conflict-remote.differs")).to_contain_text(conflict["remote"])
    base = element.locator("td").nth(1)  # the value both sides agreed on before
    expect(base).not_to_have_text(re.compile(conflict["local"] + "|" + conflict["remote"]))
    expect(modal.locator("#conflict-severity")).to_have_text(re.compile("high|medium|low"))
    page.click("#conflict-record-toggle")  # the whole record, differing elements marked
    differing = modal.locator(".record-element.differs")
    expect(differing).to_have_count(1, timeout=TIMEOUT)
    expect(differing).to_contain_text("birthDate")
    expect(modal.locator(".record-element").nth(1)).to_be_visible()  # and the rest, unmarked
    page.set_viewport_size({"width": 1280, "height": 1600})  # the whole modal in the picture
    screenshot(page, "conflict-modal")
    page.set_viewport_size({"width": 1280, "height": 800})

    # Strategies in words; the machine value stays the radio's value.
    modal.get_by_role("radio", name="Type the values to keep").click()
    page.fill("#conflict-manual", '{"birthDate": 1970')
    page.press("#conflict-manual", "Tab")
    page.click("#conflict-resolve")
    expect(page.locator("#conflict-manual-error")).to_contain_text(
        "not valid JSON", timeout=TIMEOUT
    )
    expect(page.locator("#conflict-reason-error")).to_contain_text("a reason is required")

    modal.get_by_role("radio", name="Take the EHR's version").click()
    page.fill("#conflict-reason", "EHR registration desk verified the date")
    page.press("#conflict-reason", "Tab")
    page.click("#conflict-resolve")
    expect(modal).to_have_count(0, timeout=TIMEOUT)
    expect(page.locator(f"#conflict-row-{conflict['id']}")).to_have_count(0, timeout=TIMEOUT)

    with closing(demo_app.api_client("viewer")) as api:
        stored = api.get(f"/sync/conflicts/{conflict['id']}").json()
    assert (stored["status"], stored["strategy"], stored["resolved_by"]) == (
        "resolved",
        "use_remote",
        "operator",
    )
    assert stored["reason"] == "EHR registration desk verified the date"


def test_a_viewer_can_look_but_finds_no_resolve_control(demo_app, page, conflict) -> None:
    _open(demo_app, page, "viewer")
    row = page.locator(f"#conflict-row-{conflict['id']}")
    expect(row).to_be_visible(timeout=TIMEOUT)
    row.locator(".conflict-open").click()
    modal = page.locator("#conflict-modal")
    expect(modal.locator(".conflict-remote.differs")).to_contain_text(
        conflict["remote"], timeout=TIMEOUT
    )
    for control in ("#conflict-resolve", "#conflict-reason", "#conflict-strategy"):
        expect(page.locator(control)).to_have_count(0)


def test_keeping_ours_writes_to_the_ehr_and_the_row_follows_it_live(
    demo_app, page, conflict
) -> None:
    """The resolution returns at once; the write to the EHR runs on the conflicts queue
    (#24) and the resolved list shows its outcome without a reload."""
    _open(demo_app, page, "operator")
    page.evaluate("window.__notReloaded = true")
    page.locator(f"#conflict-row-{conflict['id']} .conflict-open").click(timeout=TIMEOUT)
    modal = page.locator("#conflict-modal")
    modal.get_by_role("radio", name="Keep HoloVitals' version", exact=True).click()
    page.fill("#conflict-reason", "the patient's passport says so")
    page.press("#conflict-reason", "Tab")
    page.click("#conflict-resolve")
    expect(modal).to_have_count(0, timeout=TIMEOUT)
    expect(page.get_by_text("Writing it to the EHR")).to_be_visible(timeout=TIMEOUT)

    page.click("#conflict-filter-status")
    page.get_by_role("option", name="resolved", exact=True).click()
    row = page.locator(f"#conflict-row-{conflict['id']}")
    expect(row.locator(".conflict-write-back")).to_have_text("Written to the EHR", timeout=TIMEOUT)
    assert page.evaluate("window.__notReloaded")  # followed live, not reloaded
    token = httpx.post(
        f"{demo_app.fhir}/auth/token",
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        data={"grant_type": "client_credentials", "scope": "system/*.read"},
    )
    at_ehr = httpx.get(
        f"{demo_app.fhir}/Patient/{conflict['patient']}",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    ).json()
    assert at_ehr["birthDate"] == conflict["local"]
    with closing(demo_app.api_client("viewer")) as api:
        stored = api.get(f"/sync/conflicts/{conflict['id']}").json()
    assert stored["write_back"] == "written"
    assert stored["resolution"]["write_back"]["version"] == at_ehr["meta"]["versionId"]
