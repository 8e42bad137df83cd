"""The Audit page in a browser: search, server-side paging, newest first, chain status."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import screenshot

pytestmark = pytest.mark.e2e
WAIT = 120_000  # the machine is shared: generous bounds, not speed checks


def _seqs(page: Page) -> list[int]:
    return [
        int(r.locator("td").first.inner_text())
        for r in page.locator("#audit-table .audit-row").all()
    ]


def test_search_and_page_the_audit_log(demo_app, page: Page):
    api = demo_app.api_client("admin")
    body = {
        "name": f"Audit probe {uuid.uuid4().hex[:6]}",
        "vendor": "generic",
        "base_url": demo_app.fhir,
        "client_id": "holovitals-demo",
    }
    created = api.post("/connections", json=body).json()
    for minute in range(30):  # enough entries for a second page
        api.patch(f"/connections/{created['id']}", json={"sync_schedule": f"{minute} 3 * * *"})

    demo_app.sign_in(page, "admin", "/audit")
    expect(page.locator("#audit-chain")).to_contain_text("intact", timeout=WAIT)
    first = _seqs(page)
    assert first == sorted(first, reverse=True) and len(first) == 25

    page.fill("#audit-target", f"connection {created['id']}")
    page.fill("#audit-action", "connection.update")
    page.click("#audit-search")
    expect(page.locator("#audit-table .audit-row").first).to_contain_text(
        "connection.update", timeout=WAIT
    )
    newest = _seqs(page)
    assert len(newest) == 25 and newest == sorted(newest, reverse=True)
    page.click("#audit-older")
    expect(page.locator("#audit-table .audit-row")).to_have_count(5, timeout=WAIT)
    older = _seqs(page)
    assert max(older) < min(newest)
    page.click("#audit-newer")
    expect(page.locator("#audit-table .audit-row")).to_have_count(25, timeout=WAIT)

    # Free text over the details (ids and settings, never PHI): the creation named the vendor.
    page.fill("#audit-action", "")
    page.fill("#audit-text", "generic")
    page.click("#audit-search")
    rows = page.locator("#audit-table .audit-row")
    expect(rows).to_have_count(1, timeout=WAIT)
    expect(rows.first).to_contain_text("connection.create")
    expect(rows.first).to_contain_text("admin")
    page.fill("#audit-text", "")
    page.fill("#audit-target", "")
    page.fill("#audit-actor", "admin")
    page.click("#audit-search")
    expect(page.locator("#audit-table .audit-row")).to_have_count(25, timeout=WAIT)
    screenshot(page, "audit")


def test_viewer_cannot_read_the_audit_log(demo_app, page: Page):
    demo_app.sign_in(page, "viewer", "/audit")
    expect(page.get_by_text("open to operators and administrators")).to_be_visible(timeout=WAIT)
    assert page.locator("#audit-table").count() == 0
