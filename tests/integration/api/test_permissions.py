"""The permission matrix: every route as nobody and as each role."""

from __future__ import annotations

import pytest

from holovitals_sync.db import session_scope
from tests.factories import make_connection

RANK = {None: -1, "viewer": 0, "operator": 1, "admin": 2}

# (method, path, json body, lowest role allowed; None = anyone)
ROUTES = [
    ("GET", "/api/health", None, None),
    ("GET", "/api/connections/{cid}/jwks.json", None, None),
    ("GET", "/api/auth/me", None, "viewer"),
    ("GET", "/api/auth/tokens", None, "viewer"),
    ("POST", "/api/auth/tokens", {"name": "t", "role": "viewer"}, "viewer"),
    ("GET", "/api/connections", None, "viewer"),
    ("GET", "/api/connections/{cid}", None, "viewer"),
    ("POST", "/api/connections", {"name": "N{n}", "vendor": "generic",
                                  "base_url": "https://x.example/fhir"}, "admin"),
    ("PATCH", "/api/connections/{cid}", {"scopes": "system/*.rs"}, "admin"),
    ("POST", "/api/connections/{cid}/keys", {"alg": "ES384"}, "admin"),
    ("DELETE", "/api/connections/{other}", None, "admin"),
    ("GET", "/api/users", None, "admin"),
    ("POST", "/api/users", {"username": "u{n}", "password": "long enough password",
                            "role": "viewer"}, "admin"),
    ("PATCH", "/api/users/{uid}", {"active": True}, "admin"),
    ("GET", "/api/audit", None, "operator"),
    ("GET", "/api/audit/verify", None, "admin"),
]


def test_every_route_is_listed():
    from fastapi.testclient import TestClient

    from holovitals_sync.api import create_api

    spec = TestClient(create_api()).get("/api/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    listed = {(m, p.replace("{cid}", "{connection_id}").replace("{other}", "{connection_id}")
               .replace("{uid}", "{user_id}")) for m, p, _, _ in ROUTES}
    # Logging in and out is open by design; revoking is covered in test_auth.
    documented -= {("POST", "/api/auth/login"), ("POST", "/api/auth/logout"),
                   ("DELETE", "/api/auth/tokens/{token_id}")}
    assert documented == listed


@pytest.mark.parametrize("role", [None, "viewer", "operator", "admin"])
def test_permission_matrix(world, role):
    for n, (method, path, body, needed) in enumerate(ROUTES):
        with session_scope() as session:
            cid, other = make_connection(session, f"A{n}").id, make_connection(session, f"B{n}").id
        url = path.format(cid=cid, other=other, uid=1, n=n)
        payload = None
        if body is not None:
            payload = {k: v.format(n=n) if isinstance(v, str) else v for k, v in body.items()}
        response = world.client.request(method, url, json=payload, headers=world.headers(role))
        allowed = needed is None or RANK[role] >= RANK[needed]
        if allowed:
            assert response.status_code < 400, (method, path, role, response.text)
        else:
            expected = 401 if role is None else 403
            assert response.status_code == expected, (method, path, role, response.text)
            assert response.json()["error"]["code"] in {"unauthenticated", "forbidden"}
