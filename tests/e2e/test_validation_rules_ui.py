"""The Validation rules panel in a browser against `up --demo`: a bad FHIRPath is refused at
its field, a good rule is listed, turned off, checked against a sample and deleted; a viewer
sees the rules but no control that changes them."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e
WAIT = 120_000  # the machine is shared: generous bounds, not speed checks


def _choose(page: Page, trigger: str, option: str) -> None:
    page.click(trigger)
    page.get_by_role("option", name=option, exact=True).click()


def _new_connection(demo_app) -> int:
    """A connection of this test's own (the demo's is shared with the other browser tests)."""
    api = demo_app.api_client("admin")
    created = api.post(
        "/connections",
        json={
            "name": f"Rules {uuid.uuid4().hex[:6]}",
            "vendor": "generic",
            "base_url": demo_app.fhir,
        },
    )
    created.raise_for_status()
    return created.json()["id"]


def _open(demo_app, page: Page, role: str, cid: int) -> None:
    demo_app.sign_in(page, role, "/connections")
    page.goto(f"{demo_app.url}/connections?id={cid}")
    expect(page.locator("#validation-rules")).to_be_visible(timeout=WAIT)


def test_admin_adds_checks_disables_and_deletes_a_rule(demo_app, page: Page):
    cid = _new_connection(demo_app)
    _open(demo_app, page, "admin", cid)
    expect(page.locator("#vrules-empty")).to_be_visible(timeout=WAIT)

    page.click("#vrule-add")
    expect(page.locator("#vrule-form")).to_be_visible(timeout=WAIT)
    _choose(page, "#vrule-check", "fhirpath")
    page.fill("#vrule-name", "final only")
    page.fill("#vrule-resource_type", "Observation")
    page.fill("#vrule-expression", "status = (")
    page.click("#vrule-save")
    expect(page.locator("#vrule-error-expression")).to_contain_text("FHIRPath", timeout=WAIT)
    assert page.locator("#vrules-table").count() == 0  # nothing saved
    screenshot(page, "validation-rule-refused")

    page.fill("#vrule-expression", "status = 'final'")
    expect(page.locator("#vrule-error-expression")).to_have_count(0, timeout=WAIT)
    page.click("#vrule-save")
    rows = page.locator("#vrules-table .vrule-row")
    expect(rows).to_have_count(1, timeout=WAIT)
    expect(rows.first).to_contain_text("final only")
    expect(rows.first).to_contain_text("status = 'final'")
    expect(rows.first.locator(".vrule-enabled")).to_have_text("on")
    expect(page.locator("#vrule-form")).to_have_count(0)

    page.fill(
        "#vrule-sample", '{"resourceType": "Observation", "id": "o1", "status": "preliminary"}'
    )
    page.click("#vrule-check-run")
    expect(page.locator("#vrule-check-result")).to_contain_text("final only: assertion failed",
                                                                timeout=WAIT)  # fmt: skip
    screenshot(page, "validation-rules")

    # Saved as the API sees it; then turned off from the list.
    api = demo_app.api_client("admin")
    saved = api.get(f"/connections/{cid}/validation-rules").json()
    assert [(r["check"], r["name"], r["enabled"]) for r in saved] == [
        ("fhirpath", "final only", True)
    ]
    rows.first.locator(".vrule-toggle").click()
    expect(rows.first.locator(".vrule-enabled")).to_have_text("off", timeout=WAIT)
    assert api.get(f"/connections/{cid}/validation-rules").json()[0]["enabled"] is False
    page.click("#vrule-check-run")
    expect(page.locator("#vrule-check-result")).to_have_text("Every rule passes.",
                                                             timeout=WAIT)  # fmt: skip

    rows.first.locator(".vrule-delete").click()
    expect(page.locator("#vrules-empty")).to_be_visible(timeout=WAIT)
    assert api.get(f"/connections/{cid}/validation-rules").json() == []
    for action in ("create", "disable", "delete"):  # each change is in the audit log
        entries = api.get(
            "/audit", params={"action": f"validation_rule.{action}", "limit": 500}
        ).json()["items"]
        assert [e["target_id"] for e in entries].count(str(cid)) == 1, action


def test_viewer_sees_rules_but_no_control(demo_app, page: Page):
    cid = _new_connection(demo_app)
    api = demo_app.api_client("admin")
    api.post(
        f"/connections/{cid}/validation-rules",
        json={
            "check": "pattern",
            "name": "mrn shape",
            "resource_type": "Patient",
            "path": "identifier[*].value",
            "pattern": "MRN[0-9]+",
        },
    ).raise_for_status()
    _open(demo_app, page, "viewer", cid)
    rows = page.locator("#vrules-table .vrule-row")
    expect(rows).to_have_count(1, timeout=WAIT)
    expect(rows.first).to_contain_text("mrn shape")
    for control in ("#vrule-add", ".vrule-toggle", ".vrule-delete", "#vrule-check-run"):
        assert page.locator(control).count() == 0, control
    # Opening another connection shows that one's rules (the panel reloads with it).
    name = api.get(f"/connections/{cid}").json()["name"]
    page.locator(".connection-row", has_text="Sandbox EHR").get_by_role(
        "button", name="Open"
    ).click()
    expect(page.locator("#detail-name")).to_contain_text("Sandbox EHR", timeout=WAIT)
    expect(page.locator("#vrules-empty")).to_be_visible(timeout=WAIT)
    page.locator(".connection-row", has_text=name).get_by_role("button", name="Open").click()
    expect(rows).to_have_count(1, timeout=WAIT)
