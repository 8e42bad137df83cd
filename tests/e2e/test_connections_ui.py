"""The Connections page in a browser against `up --demo`: add, test, schedule, keys, rules."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e
WAIT = 120_000  # the machine is shared: generous bounds, not speed checks
DEMO_CLIENT = ("holovitals-demo", "demo-secret")  # services.demo: the sandbox's demo client


def _choose(page: Page, trigger: str, option: str) -> None:
    page.click(trigger)
    page.get_by_role("option", name=option, exact=True).click()


def _add_sandbox_connection(page: Page, fhir: str, name: str) -> None:
    """Through the dialog: a bad URL is refused at its field first, then the right one saves."""
    page.click("#connection-add")
    dialog = page.locator("#connection-dialog")
    expect(dialog).to_be_visible(timeout=WAIT)
    page.fill("#field-name", name)
    page.fill("#field-base_url", "sandbox.local/fhir")
    _choose(page, "#field-auth_method", "Client secret (HTTP Basic)")
    page.fill("#field-client_id", DEMO_CLIENT[0])
    page.fill("#field-client_secret", DEMO_CLIENT[1])
    page.click("#connection-save")
    expect(page.locator("#error-base_url")).to_contain_text("http", timeout=WAIT)
    screenshot(page, "connection-dialog")
    page.fill("#field-base_url", fhir)
    expect(page.locator("#error-base_url")).to_have_count(0, timeout=WAIT)
    page.click("#connection-save")
    expect(dialog).to_have_count(0, timeout=WAIT)
    expect(page.locator("#detail-name")).to_have_text(name, timeout=WAIT)


def _test_every_step_passes(page: Page) -> None:
    page.click("#connection-test")
    steps = page.locator("#test-steps .test-step")
    expect(steps).to_have_count(4, timeout=WAIT)
    expect(page.locator("#test-steps .step-failed")).to_have_count(0)
    expect(page.locator("#test-steps .step-ok")).to_have_count(4)
    screenshot(page, "connection-test")


def _set_schedule(page: Page) -> None:
    page.fill("#schedule-cron", "every hour")
    expect(page.locator("#error-schedule")).to_contain_text("cron", timeout=WAIT)
    page.fill("#schedule-cron", "*/15 * * * *")
    expect(page.locator("#error-schedule")).to_have_count(0, timeout=WAIT)
    expect(page.locator("#next-runs .next-run")).to_have_count(5, timeout=WAIT)
    minutes = [
        re.search(r":(\d\d) UTC", t).group(1)
        for t in page.locator("#next-runs .next-run").all_inner_texts()
    ]
    assert all(int(m) % 15 == 0 for m in minutes), minutes
    page.fill("#schedule-concurrency", "3")
    _choose(page, "#schedule-full-sync", "Paged search")
    page.fill("#schedule-page-size", "5")
    page.fill("#schedule-streams", "5")  # above the jobs at once: said, not refused
    expect(page.locator("#schedule-streams-capped")).to_contain_text(
        "3 types at once", timeout=WAIT
    )
    page.fill("#schedule-streams", "2")
    expect(page.locator("#schedule-streams-capped")).to_have_count(0, timeout=WAIT)
    page.fill("#schedule-resource-types", "Observation")
    page.click("#schedule-save")
    expect(page.locator("#error-page_size")).to_contain_text("10 to 10000", timeout=WAIT)
    expect(page.locator("#error-resource_types")).to_contain_text("Patient", timeout=WAIT)
    page.fill("#schedule-page-size", "500")
    expect(page.locator("#error-page_size")).to_have_count(0, timeout=WAIT)
    page.fill("#schedule-resource-types", "Patient, Observation, Condition")
    expect(page.locator("#error-resource_types")).to_have_count(0, timeout=WAIT)
    page.click("#schedule-save")


def _edit_keeps_the_secret(page: Page, name: str) -> None:
    """The stored secret is never shown; saved blank, it stays (the test still passes)."""
    page.locator(".connection-row", has_text=name).locator(".edit-button").click()
    secret = page.locator("#field-client_secret")
    expect(secret).to_have_attribute("placeholder", "leave blank to keep", timeout=WAIT)
    assert secret.input_value() == ""
    page.fill("#field-client_id", DEMO_CLIENT[0])
    page.click("#connection-save")
    expect(page.locator("#connection-dialog")).to_have_count(0, timeout=WAIT)
    _choose(page, "#connection-status", "active")
    expect(page.locator(".connection-row", has_text=name)).to_contain_text("active", timeout=WAIT)
    page.click("#connection-test")
    # With types chosen (the schedule card), the test checks the server offers them too.
    expect(page.locator("#test-steps .step-ok")).to_have_count(5, timeout=WAIT)
    expect(page.locator("#test-steps")).to_contain_text("Resource types to sync", timeout=WAIT)
    expect(page.locator("#test-steps")).to_contain_text("syncs 3 of the", timeout=WAIT)


def _rule_and_dry_run(page: Page) -> None:
    page.click("#rule-add")
    expect(page.locator("#rule-params")).to_be_visible(timeout=WAIT)
    page.fill("#rule-params", '{"path": "gender", "mapping": {}}')
    page.click("#rule-save")
    expect(page.locator("#rule-error-params")).to_be_visible(timeout=WAIT)
    page.fill("#rule-params", '{"path": "gender", "mapping": {"F": "female", "M": "male"}}')
    page.click("#rule-save")
    expect(page.locator("#rules-table .rule-row")).to_have_count(1, timeout=WAIT)
    page.fill("#dry-run-sample", '{"resourceType": "Patient", "id": "p1", "gender": "F"}')
    page.click("#dry-run")
    expect(page.locator("#dry-run-changes")).to_contain_text("gender", timeout=WAIT)
    expect(page.locator("#dry-run-before")).to_contain_text('"F"')
    expect(page.locator("#dry-run-after")).to_contain_text('"female"')
    screenshot(page, "rules-dry-run")


def _generate_key(page: Page) -> None:
    page.click("#generate-key")
    expect(page.locator("#jwks-json")).to_contain_text("RSA", timeout=WAIT)
    url = page.locator("#jwks-url").inner_text()
    published = httpx.get(url, timeout=30).json()
    assert published["keys"][0]["kid"] in page.locator("#jwks-json").inner_text()


def test_admin_adds_tests_schedules_and_transforms(demo_app, page: Page):
    name = f"Sandbox second {uuid.uuid4().hex[:6]}"
    demo_app.sign_in(page, "admin", "/connections")
    expect(page.locator("#connections-table")).to_contain_text("Sandbox EHR", timeout=WAIT)
    _add_sandbox_connection(page, demo_app.fhir, name)
    expect(page.locator("#connections-table")).to_contain_text(name, timeout=WAIT)
    _test_every_step_passes(page)
    page.reload()  # the open connection is in the address: a reload shows it again
    expect(page.locator("#detail-name")).to_have_text(name, timeout=WAIT)
    _set_schedule(page)
    row = page.locator(".connection-row", has_text=name)
    expect(row).to_contain_text("*/15 * * * *", timeout=WAIT)
    _edit_keeps_the_secret(page, name)
    _rule_and_dry_run(page)
    _generate_key(page)
    screenshot(page, "connections")

    # What was saved, seen through the API: the settings, and no secret anywhere.
    api = demo_app.api_client("admin")
    saved = next(c for c in api.get("/connections").json() if c["name"] == name)
    assert (saved["sync_schedule"], saved["concurrency_limit"]) == ("*/15 * * * *", 3)
    assert (saved["full_sync_via"], saved["page_size"], saved["stream_limit"]) == ("search", 500, 2)
    assert saved["resource_types"] == ["Patient", "Observation", "Condition"]
    assert saved["has_client_secret"] and saved["has_signing_key"]
    assert DEMO_CLIENT[1] not in api.get(f"/connections/{saved['id']}").text

    # The actions are in the audit log, found by searching the Audit page.
    page.goto(f"{demo_app.url}/audit")
    page.fill("#audit-target", f"connection {saved['id']}")
    page.fill("#audit-action", "connection.test")
    page.click("#audit-search")
    rows = page.locator("#audit-table .audit-row")
    expect(rows).to_have_count(2, timeout=WAIT)  # tested after adding and after editing
    for text in rows.all_inner_texts():
        assert "admin" in text and "success" in text


def test_operator_tests_and_dry_runs_but_changes_no_setting(demo_app, page: Page):
    demo_app.sign_in(page, "operator", "/connections")
    expect(page.locator("#connections-table")).to_contain_text("Sandbox EHR", timeout=WAIT)
    page.locator(".connection-row", has_text="Sandbox EHR").get_by_role(
        "button", name="Open"
    ).click()
    expect(page.locator("#connection-test")).to_be_visible(timeout=WAIT)
    expect(page.locator("#dry-run")).to_be_visible()
    for control in (
        "#connection-add",
        ".edit-button",
        "#generate-key",
        "#schedule-save",
        "#rule-add",
        "#connection-status",
    ):
        assert page.locator(control).count() == 0, control
    expect(page.locator("#schedule-types")).to_have_text("all the EHR offers")  # as a value
    page.click("#connection-test")
    expect(page.locator("#test-steps .step-ok")).to_have_count(4, timeout=WAIT)


def test_viewer_sees_no_mutating_control(demo_app, page: Page):
    demo_app.sign_in(page, "viewer", "/connections")
    expect(page.locator("#connections-table")).to_contain_text("Sandbox EHR", timeout=WAIT)
    page.locator(".connection-row").first.get_by_role("button", name="Open").click()
    expect(page.locator("#connection-detail")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("Transformation rules")).to_be_visible(timeout=WAIT)
    # Values, not inputs: nothing on the page invites a change a viewer cannot make.
    expect(page.locator("#schedule-cron")).to_be_visible()
    expect(page.locator("#schedule-concurrency")).to_be_visible()
    expect(page.locator("#schedule-full-sync")).to_have_text(
        "Bulk Data export where offered", timeout=WAIT
    )
    expect(page.locator("#schedule-streams")).to_have_text(re.compile(r"^\d+$"), timeout=WAIT)
    expect(page.locator("#schedule-page-size")).to_be_visible()
    inputs = "input#schedule-cron, input#schedule-concurrency, input#schedule-page-size"
    assert page.locator(f"{inputs}, input#schedule-streams").count() == 0
    assert page.locator("button#schedule-full-sync").count() == 0
    for control in (
        "#connection-add",
        ".edit-button",
        "#connection-test",
        "#generate-key",
        "#schedule-save",
        "#rule-add",
        "#dry-run",
        "#connection-status",
    ):
        assert page.locator(control).count() == 0, control
