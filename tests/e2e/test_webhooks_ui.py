"""The Webhooks tab in a browser: the configuration modal, the secret once, a real test event.

The receiver is a tiny HTTP server on loopback started here. The SSRF guard refuses loopback
targets unless `HOLOVITALS_WEBHOOK_ALLOW_HOSTS` lists them, so `up --demo` must be started
with `HOLOVITALS_WEBHOOK_ALLOW_HOSTS=127.0.0.1` (see `demo_app` in tests/e2e/conftest.py).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page, expect

from holovitals_sync.models import SignatureAlgorithm
from holovitals_sync.services.webhooks import signing
from tests.e2e.conftest import DemoApp, screenshot
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e
ANSWER = b'{"accepted": true, "receiver": "ward-board"}'
TIMEOUT = 30_000


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append((dict(self.headers), body))
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def loopback_allowed(demo_app, receiver) -> None:
    """Fail with the fix named when the app was started without loopback targets allowed."""
    with closing(demo_app.api_client("operator")) as api:
        answer = api.post(
            "/sync/webhooks",
            json={"name": "probe", "url": receiver[0], "event_types": ["sync.completed"]},
        )
        if answer.status_code == 201:
            api.delete(f"/sync/webhooks/{answer.json()['id']}").raise_for_status()
            return
    pytest.fail(
        "up --demo refuses loopback webhook targets: start it with "
        f"HOLOVITALS_WEBHOOK_ALLOW_HOSTS=127.0.0.1 ({answer.status_code} {answer.text})"
    )


def _type(page, selector: str, text: str) -> None:
    """Fill a controlled input and leave it, so its change reaches the server first."""
    page.fill(selector, text)
    page.press(selector, "Tab")


def _open(demo_app: DemoApp, page: Page, role: str) -> None:
    """Sign in and wait for the page itself: `sign_in`'s URL check also matches
    `/signin?next=/webhooks`, so it can return while the sign-in is still under way."""
    demo_app.sign_in(page, role, "/webhooks")
    expect(page.locator("#page-title")).to_have_text("Webhooks", timeout=120_000)


def test_operator_configures_a_subscription_and_sends_a_test_event(
    demo_app, page, receiver, loopback_allowed
) -> None:
    url, handler = receiver
    _open(demo_app, page, "operator")
    page.click("#webhook-new")
    modal = page.locator("#webhook-modal")
    expect(modal).to_be_visible(timeout=TIMEOUT)
    _type(page, "#webhook-name", "Ward board")
    _type(page, "#webhook-url", "not a url")
    page.click("#webhook-group-sync")  # sync.completed and sync.failed at once
    page.click("#webhook-event-conflict-detected")
    expect(page.locator("#webhook-content-warning")).to_have_count(0)
    page.click("#webhook-include-content")  # opting in to PHI says what it means
    expect(page.locator("#webhook-content-warning")).to_contain_text(
        "protected health information", timeout=TIMEOUT
    )
    page.click("#webhook-save")
    expect(page.locator("#webhook-error-url")).to_have_text(
        "Enter a URL starting with http:// or https://", timeout=TIMEOUT
    )
    expect(page.locator("#webhook-secret")).to_have_count(0)

    _type(page, "#webhook-url", url)
    expect(page.locator("#webhook-error-url")).to_have_count(0)
    page.click("#webhook-save")
    secret_box = page.locator("#webhook-secret")
    expect(secret_box).to_contain_text("whsec_", timeout=TIMEOUT)
    secret = secret_box.inner_text().strip()
    with closing(demo_app.api_client("viewer")) as api:
        saved = [s for s in api.get("/sync/webhooks").json() if s["name"] == "Ward board"]
    assert [s["include_content"] for s in saved] == [True]

    page.click("#webhook-send-test")
    expect(page.locator("#webhook-test-status")).to_have_text("202", timeout=TIMEOUT)
    expect(page.locator("#webhook-test-body")).to_contain_text('"receiver": "ward-board"')
    page.set_viewport_size({"width": 1280, "height": 1400})  # the whole modal in the picture
    screenshot(page, "webhook-modal")
    page.set_viewport_size({"width": 1280, "height": 800})
    headers, body = handler.received[-1]
    assert headers["X-HoloVitals-Event-Type"] == "webhook.test"
    signing.verify(
        body,
        headers["X-HoloVitals-Signature"],
        secret,
        algorithm=SignatureAlgorithm.HMAC_SHA256,
        tolerance=300,
    )

    page.click("#webhook-close")
    expect(modal).to_have_count(0, timeout=TIMEOUT)
    row = page.locator(".webhook-row", has_text="Ward board")
    expect(row.locator(".webhook-health")).to_have_text("active", timeout=TIMEOUT)
    expect(row.locator(".webhook-content")).to_be_visible()
    test_delivery = page.locator(".delivery-row", has_text="webhook.test")
    expect(test_delivery.first).to_contain_text("delivered")
    expect(test_delivery.first).to_contain_text("202")
    screenshot(page, "webhooks-tab")
    test_delivery.first.locator(".delivery-redeliver").click()  # a worker sends it again
    wait_for(lambda: len(handler.received) == 2, timeout=60)
    assert handler.received[1][0]["X-HoloVitals-Event-Id"] == headers["X-HoloVitals-Event-Id"]

    row.locator(".webhook-edit").click()  # the secret never shows again
    expect(page.locator("#webhook-url")).to_have_value(url, timeout=TIMEOUT)
    expect(page.locator("#webhook-event-sync-failed")).to_have_attribute("data-state", "checked")
    expect(page.locator("#webhook-include-content")).to_have_attribute("data-state", "checked")
    expect(page.locator("#webhook-secret")).to_have_count(0)
    assert secret not in page.content()
    page.click("#webhook-close")

    row.locator(".webhook-toggle").click()
    expect(row.locator(".webhook-health")).to_have_text("disabled", timeout=TIMEOUT)
    row.locator(".webhook-delete").click()
    page.click("#webhook-delete-confirm")
    expect(page.locator(".webhook-row", has_text="Ward board")).to_have_count(0, timeout=TIMEOUT)


def test_a_viewer_sees_the_lists_but_no_control_that_changes_anything(demo_app, page) -> None:
    with closing(demo_app.api_client("operator")) as api:
        created = api.post(
            "/sync/webhooks",
            json={
                "name": "Viewer check",
                "url": "https://93.184.215.14/hook",
                "event_types": ["patient.updated"],
            },
        )
        created.raise_for_status()
    _open(demo_app, page, "viewer")
    row = page.locator(".webhook-row", has_text="Viewer check")
    expect(row).to_be_visible(timeout=TIMEOUT)
    for control in (
        "#webhook-new",
        ".webhook-edit",
        ".webhook-toggle",
        ".webhook-delete",
        ".delivery-redeliver",
        "#webhook-modal",
    ):
        expect(page.locator(control)).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Redeliver|Delete|Disable"))).to_have_count(0)
    with closing(demo_app.api_client("operator")) as api:
        api.delete(f"/sync/webhooks/{created.json()['id']}").raise_for_status()
