"""Other origins cannot act with the user's cookie (issue #25, point 5).

CORS answered any Origin (even `null`) with credentials allowed, and a page on another
localhost port created an admin API token and read it.
"""

from __future__ import annotations

import importlib

from tests.factories import PASSWORD

EVIL = ["http://localhost:3001", "http://evil.example", "null", "http://127.0.0.1:8000"]


def _signed_in(world) -> None:
    answer = world.client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
    assert answer.status_code == 200


def test_changes_with_the_cookie_from_another_origin_are_refused(world):
    _signed_in(world)
    for origin in EVIL:
        refused = world.client.post(
            "/api/auth/tokens", headers={"Origin": origin}, json={"name": "stolen", "role": "admin"}
        )
        assert refused.status_code == 403, origin
        assert "hvs_" not in refused.text
    # The dashboard's own origin, and scripts (no Origin), go on working.
    own = world.client.post(
        "/api/auth/tokens",
        headers={"Origin": "http://localhost:3000"},
        json={"name": "mine", "role": "viewer"},
    )
    assert own.status_code == 201, own.text
    script = world.client.post("/api/auth/tokens", json={"name": "cron", "role": "viewer"})
    assert script.status_code == 201
    # Reading is not a change; a bearer token is not a cookie a page can borrow.
    assert world.client.get("/api/auth/me", headers={"Origin": EVIL[0]}).status_code == 200
    world.client.cookies.clear()
    bearer = world.client.post(
        "/api/auth/tokens",
        json={"name": "t", "role": "viewer"},
        headers={**world.headers("admin"), "Origin": EVIL[1]},
    )
    assert bearer.status_code == 201


def test_the_backend_allows_only_the_dashboard_origins(monkeypatch):
    monkeypatch.setenv("HOLOVITALS_FRONTEND_PORT", "3456")
    from holovitals_sync.config import get_settings

    get_settings.cache_clear()
    import rxconfig

    config = importlib.reload(rxconfig).config
    assert list(config.cors_allowed_origins) == ["http://localhost:3456", "http://127.0.0.1:3456"]
    monkeypatch.setenv("HOLOVITALS_DASHBOARD_ORIGINS", "https://sync.example-hospital.org/")
    get_settings.cache_clear()
    assert list(importlib.reload(rxconfig).config.cors_allowed_origins) == [
        "https://sync.example-hospital.org"
    ]
