"""The Records page, the jobs' deleted counter and the sweep schedule in Debian's chromium at
1280x800 against `up --demo` (issue #22).

A connection of this module's own to the sandbox, with a custom rule that flags every
male patient, is fully synced once; one of its Observations is then deleted at the sandbox
(and put back at the end), so a sweep started from the dashboard has exactly one record to
tombstone. Everything is driven through the pages; the API and the sandbox only set the
scene and check what the pages claim.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from holovitals_sync.services.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.e2e.conftest import DemoApp, screenshot
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
WAIT = 120_000  # the machine is shared: generous bounds, not speed checks
WIDTH = 1280
RULE = "only female"  # flags every male Patient (an error: stored and flagged, lenient)


@dataclass
class Scene:
    cid: int
    name: str
    job: int  # the full sync that flagged the male patients
    gone: str  # the Observation deleted at the sandbox after that sync


def _ehr_headers(fhir: str) -> dict[str, str]:
    token = httpx.post(
        f"{fhir}/auth/token",
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
        data={"grant_type": "client_credentials", "scope": "system/*.read system/*.write"},
    )
    token.raise_for_status()
    return {
        "Authorization": f"Bearer {token.json()['access_token']}",
        "Content-Type": "application/fhir+json",
    }


def _finished(api: httpx.Client, job_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = api.get(f"/sync/jobs/{job_id}").json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    job = wait_for(done, timeout=300, interval=1)
    assert job["status"] == "completed", job["last_error"]
    return job


@pytest.fixture(scope="module")
def scene(demo_app: DemoApp) -> Iterator[Scene]:
    name = f"Records check {uuid.uuid4().hex[:6]}"
    with closing(demo_app.api_client("admin")) as admin:
        created = admin.post(
            "/connections",
            json={
                "name": name,
                "vendor": "generic",
                "base_url": demo_app.fhir,
                "client_id": DEMO_CLIENT_ID,
                "auth_method": "client_secret_basic",
                "client_secret": DEMO_CLIENT_SECRET,
            },
        )
        created.raise_for_status()
        cid = created.json()["id"]
        admin.post(
            f"/connections/{cid}/validation-rules",
            json={
                "check": "pattern",
                "name": RULE,
                "resource_type": "Patient",
                "path": "gender",
                "pattern": "female",
            },
        ).raise_for_status()
        # Warnings of another rule, which the CSV of the first rule's errors must leave out.
        admin.post(
            f"/connections/{cid}/validation-rules",
            json={
                "check": "pattern",
                "name": "first ids",
                "resource_type": "Patient",
                "path": "id",
                "pattern": "pt-0000[0-4]",
                "severity": "warning",
            },
        ).raise_for_status()
    with closing(demo_app.api_client("operator")) as api:
        started = api.post("/sync/jobs", json={"connection_id": cid, "job_type": "full"})
        started.raise_for_status()
        job = _finished(api, started.json()["id"])
        assert job["invalid"] > 0, job
        # A Observation of the last patient: the conflict tests edit the first patients.
        held = api.get(
            "/records",
            params={
                "connection_id": cid,
                "patient": "pt-00049",
                "resource_type": "Observation",
                "limit": 1,
            },
        ).json()
        gone = held["items"][0]["remote_id"]
    headers = _ehr_headers(demo_app.fhir)
    body = httpx.get(f"{demo_app.fhir}/Observation/{gone}", headers=headers).json()
    httpx.delete(f"{demo_app.fhir}/Observation/{gone}", headers=headers).raise_for_status()
    try:
        yield Scene(cid, name, job["id"], gone)
    finally:  # the sandbox as it was, for the tests after these
        httpx.put(
            f"{demo_app.fhir}/Observation/{gone}", json=body, headers=_ehr_headers(demo_app.fhir)
        ).raise_for_status()


def _choose(page: Page, trigger: str, option: str) -> None:
    page.click(trigger)
    page.get_by_role("option", name=option, exact=True).click()


def _scroll_width(page: Page) -> int:
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    )


def _open_records(demo_app: DemoApp, page: Page, role: str, scene: Scene, query: str = "") -> None:
    demo_app.sign_in(page, role, "/records")  # signing in comes back to the path only
    page.goto(f"{demo_app.url}/records?connection={scene.cid}{query}")
    expect(page.locator("#records-connection")).to_contain_text(scene.name, timeout=WAIT)


def _rows(page: Page) -> Any:
    return page.locator("#records-table .record-row")


def test_filters_narrow_the_list_and_a_flagged_record_shows_its_issues(
    demo_app: DemoApp, page: Page, scene: Scene
) -> None:
    _open_records(demo_app, page, "viewer", scene)
    expect(_rows(page)).to_have_count(15, timeout=WAIT)  # a full page of every record
    assert _scroll_width(page) <= WIDTH

    _choose(page, "#records-filter-invalid", "flagged")
    valid = "#records-table .record-row:not(:has(.state-invalid, .state-reference_missing))"
    expect(page.locator(valid)).to_have_count(0, timeout=WAIT)
    _choose(page, "#records-filter-resource_type", "Patient")
    expect(_rows(page).first).to_contain_text("Patient", timeout=WAIT)
    expect(_rows(page).locator(".record-type:not(:text-is('Patient'))")).to_have_count(0)
    with closing(demo_app.api_client("viewer")) as api:
        api_ids = [
            r["remote_id"]
            for r in api.get(
                "/records",
                params={
                    "connection_id": scene.cid,
                    "resource_type": "Patient",
                    "invalid": True,
                    "limit": 15,
                },
            ).json()["items"]
        ]
    shown = _rows(page).locator(".record-id").all_inner_texts()
    assert shown == api_ids and shown, (shown, api_ids)

    # The patient box narrows to one patient: its Patient record and nothing else flagged.
    male = shown[0]
    screenshot(page, "records-list")
    page.fill("#records-filter-patient", male)
    page.press("#records-filter-patient", "Enter")
    expect(_rows(page)).to_have_count(1, timeout=WAIT)
    expect(_rows(page)).to_contain_text(male)

    _rows(page).first.locator(".record-open").click()
    dialog = page.locator("#record-dialog")
    expect(dialog).to_be_visible(timeout=WAIT)
    expect(page.locator("#record-body")).to_contain_text(f'"id": "{male}"')
    expect(page.locator("#record-body")).to_contain_text('"gender": "male"')
    issue = page.locator("#record-issues .record-issue")
    expect(issue.first).to_contain_text(f"[custom] {RULE}", timeout=WAIT)
    # Beside each other: the issues to the right of the body, on the same line.
    body_box = page.locator("#record-body").bounding_box()
    issues_box = page.locator("#record-issues").bounding_box()
    assert issues_box["x"] >= body_box["x"] + body_box["width"] - 1, (body_box, issues_box)
    assert issues_box["y"] < body_box["y"] + body_box["height"]
    assert page.locator("#record-delete").count() == 0  # a viewer only looks
    assert _scroll_width(page) <= WIDTH
    screenshot(page, "records-flagged")


def test_a_jobs_errors_from_its_detail_and_the_csv_of_the_filtered_ones(
    demo_app: DemoApp, page: Page, scene: Scene
) -> None:
    demo_app.sign_in(page, "viewer", "/")
    _choose(page, "#filter-connection", scene.name)
    page.locator(f"#job-row-{scene.job} .job-detail-button").click()
    expect(page.locator("#job-detail")).to_be_visible(timeout=WAIT)
    page.click("#detail-errors-link")
    page.wait_for_url(
        re.compile(
            rf"/records\?connection={scene.cid}&view=errors&job="
            rf"{scene.job}$"
        ),
        timeout=WAIT,
    )
    expect(page.locator("#records-filter-job")).to_have_value(str(scene.job), timeout=WAIT)
    errors = page.locator("#errors-table .error-row")
    expect(errors.first).to_be_visible(timeout=WAIT)
    assert all(f"#{scene.job}" in t for t in errors.all_inner_texts())

    page.fill("#records-filter-rule", RULE)
    page.press("#records-filter-rule", "Enter")
    expect(page.locator("#errors-table .error-row:not(:has-text('only female'))")).to_have_count(
        0, timeout=WAIT
    )
    assert _scroll_width(page) <= WIDTH
    screenshot(page, "records-errors")
    with page.expect_download(timeout=WAIT) as download:
        page.click("#records-csv")
    text = download.value.path().read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    with closing(demo_app.api_client("viewer")) as api:
        expected = api.get(
            "/records/errors",
            params={"connection_id": scene.cid, "job_id": scene.job, "rule": RULE, "limit": 500},
        ).json()["items"]
        everything = api.get(
            "/records/errors", params={"connection_id": scene.cid, "limit": 500}
        ).json()["items"]
    assert download.value.suggested_filename == f"record-errors-connection-{scene.cid}.csv"
    assert len(everything) > len(expected) > 0  # the filters narrowed the export
    assert [(r["job_id"], r["remote_id"], r["message"]) for r in rows] == [
        (str(e["job_id"]), e["remote_id"], e["message"]) for e in expected
    ]
    assert all(r["message"].startswith(f"[custom] {RULE}:") for r in rows)

    # An error's record opens from the list, its issue beside its body.
    errors.first.locator(".error-open").click()
    expect(page.locator("#record-issues")).to_contain_text(RULE, timeout=WAIT)
    expect(page.locator("#record-body")).to_contain_text('"resourceType": "Patient"')


def test_a_sweep_from_the_dialog_counts_deleted_and_the_tombstone_says_why(
    demo_app: DemoApp, page: Page, scene: Scene
) -> None:
    demo_app.sign_in(page, "operator", "/")
    page.click("#start-sync")
    _choose(page, "#start-connection_id", scene.name)
    _choose(page, "#start-job_type", "sweep")
    expect(page.locator("#start-sweep-help")).to_contain_text("deleted", timeout=WAIT)
    page.click("#start-submit")
    page.locator("#start-sync-dialog").wait_for(state="detached")
    with closing(demo_app.api_client("operator")) as api:
        sweeps = wait_for(
            lambda: [
                j
                for j in api.get(
                    "/sync/jobs", params={"connection_id": scene.cid, "job_type": "sweep"}
                ).json()["items"]
            ],
            timeout=60,
        )
        job = _finished(api, sweeps[0]["id"])
        record = api.get(f"/records/{scene.cid}/Observation/{scene.gone}").json()
    assert job["deleted"] == 1, job
    row = page.locator(f"#job-row-{job['id']}")
    expect(row.locator(".job-status")).to_have_text("completed", timeout=WAIT)
    expect(row.locator(".counter-deleted")).to_have_text("1", timeout=WAIT)
    expect(page.locator("#jobs-table th", has_text="deleted")).to_be_visible()
    assert _scroll_width(page) <= WIDTH  # fourteen columns still fit
    row.locator(".job-detail-button").click()
    expect(page.locator(f"#detail-counters-{job['id']} .counter-deleted")).to_have_text(
        "1", timeout=WAIT
    )
    page.keyboard.press("Escape")

    page.goto(f"{demo_app.url}/records?connection={scene.cid}")
    _choose(page, "#records-filter-deleted", "deleted")
    expect(_rows(page)).to_have_count(1, timeout=WAIT)
    expect(_rows(page).locator(".state-deleted")).to_have_text("Deleted at the EHR")
    _rows(page).first.locator(".record-open").click()
    tombstone = page.locator("#record-tombstone")
    expect(tombstone).to_contain_text(record["delete_reason"], timeout=WAIT)
    assert "sweep" in record["delete_reason"] and record["deleted"] is True
    assert page.locator("#record-delete").count() == 0  # nothing left to delete
    expect(page.locator("#record-delete-refusal")).to_contain_text("tombstone")
    screenshot(page, "records-tombstone")


def test_an_operator_asks_for_a_delete_after_confirming(
    demo_app: DemoApp, page: Page, scene: Scene
) -> None:
    _open_records(demo_app, page, "operator", scene)
    _choose(page, "#records-filter-resource_type", "Condition")
    first = _rows(page).first
    expect(first).to_be_visible(timeout=WAIT)
    remote_id = first.locator(".record-id").inner_text()
    first.locator(".record-open").click()
    page.click("#record-delete")
    page.get_by_role("button", name="Cancel").click()  # a second thought: nothing happens
    with closing(demo_app.api_client("operator")) as api:
        path = f"/records/{scene.cid}/Condition/{remote_id}"
        assert api.get(path).json()["local_deleted"] is False
        page.click("#record-delete")
        page.click("#record-delete-confirm")
        expect(page.locator("#record-delete-pending")).to_contain_text("operator", timeout=WAIT)
        held = api.get(path).json()
    assert (held["local_deleted"], held["dirty"]) == (True, True)
    expect(page.locator("[data-sonner-toast]", has_text="marked for deletion")).to_be_visible()
    page.keyboard.press("Escape")
    _choose(page, "#records-filter-dirty", "pending")
    expect(_rows(page)).to_have_count(1, timeout=WAIT)
    expect(_rows(page).locator(".state-local_deleted")).to_be_visible()


def test_the_sweep_schedule_is_edited_by_an_admin_and_only_shown_to_a_viewer(
    demo_app: DemoApp, page: Page, scene: Scene
) -> None:
    demo_app.sign_in(page, "admin", "/connections")
    page.goto(f"{demo_app.url}/connections?id={scene.cid}")
    sweep = page.locator("#schedule-sweep")
    expect(sweep).to_have_value("30 2 * * *", timeout=WAIT)  # the nightly default
    expect(page.locator("#next-sweep")).to_contain_text("02:30 UTC")
    page.fill("#schedule-sweep", "at night")
    expect(page.locator("#error-sweep")).to_contain_text("cron", timeout=WAIT)
    page.click("#schedule-save")
    page.fill("#schedule-sweep", "15 4 * * 0")
    expect(page.locator("#error-sweep")).to_have_count(0, timeout=WAIT)
    expect(page.locator("#next-sweep")).to_contain_text("04:15 UTC")
    page.click("#schedule-save")
    expect(page.locator("[data-sonner-toast]", has_text="Schedule saved")).to_be_visible(
        timeout=WAIT
    )
    with closing(demo_app.api_client("viewer")) as api:
        assert api.get(f"/connections/{scene.cid}").json()["sweep_schedule"] == "15 4 * * 0"

    page.context.clear_cookies()
    demo_app.sign_in(page, "viewer", "/connections")
    page.goto(f"{demo_app.url}/connections?id={scene.cid}")
    expect(page.locator("#schedule-sweep")).to_have_text("15 4 * * 0", timeout=WAIT)
    assert page.locator("input#schedule-sweep").count() == 0
    assert page.locator("#schedule-save").count() == 0
