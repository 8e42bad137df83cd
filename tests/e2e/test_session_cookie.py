"""The dashboard's session in a real browser: one HttpOnly, SameSite=Strict cookie, set and
deleted by the API's answers to the sign-in and sign-out forms, never seen by a script of the
page nor sent to it over the websocket (issue #25, points 6 and 12; issue #24, point 5)."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect


def _record_frames(page) -> list[str]:
    """Every websocket frame the page sends or receives from now on (Reflex's state)."""
    frames: list[str] = []

    def keep(payload: str | bytes) -> None:
        frames.append(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))

    def watch(ws) -> None:
        ws.on("framesent", keep)
        ws.on("framereceived", keep)

    page.on("websocket", watch)
    return frames


def _what_scripts_see(page) -> str:
    return page.evaluate("""() => JSON.stringify({
        cookie: document.cookie,
        session: Object.entries(sessionStorage),
        local: Object.entries(localStorage),
    })""")


def test_the_session_cookie_is_httponly_and_never_reaches_the_page(page, demo_app):
    frames = _record_frames(page)
    # Opened directly (not through a redirect from a protected page): signing in finishes.
    page.goto(f"{demo_app.url}/signin", timeout=180_000)
    page.fill("#signin-username", "admin")
    page.fill("#signin-password", demo_app.passwords["admin"])
    page.click("#signin-submit")
    page.wait_for_url(f"{demo_app.url}/", timeout=60_000)
    expect(page.locator("#user-name")).to_have_text("admin", timeout=30_000)
    expect(page.locator("#user-role")).to_have_text("admin")

    # One session cookie, which only HTTP carries.
    cookies = page.context.cookies()
    (session,) = [c for c in cookies if c["name"] == "hv_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    assert session["path"] == "/"
    assert not [c for c in cookies if c["name"] == "hvs_session"]
    token = session["value"]
    assert len(token) > 20

    # Move around, so that more state goes back and forth, then look at everything.
    page.click("#nav-conflicts")
    expect(page.locator("#page-title")).to_have_text("Conflicts", timeout=30_000)
    seen = _what_scripts_see(page)
    assert token not in seen and "hv_session" not in seen
    assert any('"admin"' in frame for frame in frames), "no state frames recorded"
    assert not [f for f in frames if token in f]
    assert not [f for f in frames if "hv_session" in f]

    # Signing out ends the session itself: the old cookie, sent again, is refused.
    page.click("#sign-out")
    page.wait_for_url(re.compile(r"/signin$"), timeout=60_000)
    assert not [c for c in page.context.cookies() if c["name"] == "hv_session"]
    replay = httpx.get(f"{demo_app.api}/auth/me", headers={"Cookie": f"hv_session={token}"})
    assert replay.status_code == 401
    page.goto(f"{demo_app.url}/conflicts")
    page.wait_for_url(re.compile(r"/signin\?next="), timeout=60_000)


def test_a_refusal_shows_on_the_sign_in_page_and_the_next_try_goes_on(page, demo_app):
    page.goto(f"{demo_app.url}/signin?next=/audit", timeout=180_000)
    page.fill("#signin-username", "operator")
    page.fill("#signin-password", "not-the-password")
    page.click("#signin-submit")
    page.wait_for_url(re.compile(r"/signin\?error=refused"), timeout=60_000)
    expect(page.locator("#signin-error")).to_contain_text(
        "Wrong username or password", timeout=30_000
    )
    assert "not-the-password" not in page.url and "operator" not in page.url
    page.fill("#signin-username", "operator")
    page.fill("#signin-password", demo_app.passwords["operator"])
    page.click("#signin-submit")
    page.wait_for_url(f"{demo_app.url}/audit", timeout=60_000)
    expect(page.locator("#user-name")).to_have_text("operator", timeout=30_000)
    expect(page.locator("#page-title")).to_have_text("Audit log")
