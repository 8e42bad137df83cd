"""SMART Backend Services token endpoint, bearer tokens and scope enforcement."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from holovitals_sync.sandbox.server import SandboxServer
from tests.fixtures.sandbox import JwtClient, register_jwt_client


def _get(sandbox: SandboxServer, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{sandbox.base_url}{path}", headers=headers)


def test_discovery_documents_are_open(sandbox: SandboxServer) -> None:
    smart = httpx.get(f"{sandbox.base_url}/.well-known/smart-configuration").json()
    assert smart["token_endpoint"] == sandbox.token_url
    assert set(smart["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert {"permission-v1", "permission-v2", "client-confidential-asymmetric"} <= set(
        smart["capabilities"]
    )
    cap = httpx.get(f"{sandbox.base_url}/metadata").json()
    ext = cap["rest"][0]["security"]["extension"][0]["extension"]
    assert ext[0]["valueUri"] == sandbox.token_url


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_valid_assertion_gets_a_token(sandbox: SandboxServer, alg: str) -> None:
    client = register_jwt_client(sandbox, alg, ["system/Observation.read", "system/Patient.rs"])
    resp = client.token_request(scope="system/Observation.read system/Patient.rs")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 300
    assert set(body["scope"].split()) == {"system/Observation.read", "system/Patient.rs"}
    assert _get(sandbox, "/Patient/pt-00001", body["access_token"]).status_code == 200
    assert _get(sandbox, "/Condition?patient=pt-00001", body["access_token"]).status_code == 403


def test_bad_assertions_are_refused(sandbox: SandboxServer) -> None:
    client = register_jwt_client(sandbox, "RS384")
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "wrong aud": client.assertion(aud="https://elsewhere.example/token"),
        "expired": client.assertion(exp=now - 30),
        "exp too far": client.assertion(exp=now + 900),
        "unknown kid": client.assertion(kid="nope"),
        "bad signature": client.assertion(key=other_key),
        "sub differs": client.assertion(sub="someone-else"),
        "no jti": client.assertion(jti=None),
    }
    for name, assertion in bad.items():
        resp = client.token_request(assertion)
        assert resp.status_code in (400, 401), name
        assert resp.json()["error"] == "invalid_client", name
    replayed = client.assertion()
    assert client.token_request(replayed).status_code == 200
    again = client.token_request(replayed)
    assert again.status_code == 400 and again.json()["error"] == "invalid_client"


def test_client_secret_basic_and_post(sandbox: SandboxServer) -> None:
    form = {"grant_type": "client_credentials", "scope": "system/*.read"}
    ok = httpx.post(sandbox.token_url, data=form, auth=("holovitals-demo", "demo-secret"))
    assert ok.status_code == 200 and ok.json()["scope"] == "system/*.read"
    post = httpx.post(
        sandbox.token_url,
        data={**form, "client_id": "holovitals-demo", "client_secret": "demo-secret"},
    )
    assert post.status_code == 200
    wrong = httpx.post(sandbox.token_url, data=form, auth=("holovitals-demo", "nope"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    grant = httpx.post(
        sandbox.token_url, data={"grant_type": "password"}, auth=("holovitals-demo", "demo-secret")
    )
    assert grant.json()["error"] == "unsupported_grant_type"


def test_scopes_are_intersected_and_enforced(sandbox: SandboxServer) -> None:
    sandbox.register_client("narrow", ["system/Observation.rs"], secret="s3")
    resp = httpx.post(
        sandbox.token_url,
        auth=("narrow", "s3"),
        data={"grant_type": "client_credentials", "scope": "system/*.read system/Patient.write"},
    )
    assert resp.status_code == 200
    token = resp.json()["access_token"]
    assert resp.json()["scope"] == "system/Observation.rs"
    assert _get(sandbox, "/Observation?patient=pt-00001", token).status_code == 200
    assert _get(sandbox, "/Patient/pt-00001", token).status_code == 403
    write = httpx.post(
        f"{sandbox.base_url}/Observation",
        headers={"Authorization": f"Bearer {token}"},
        json={"resourceType": "Observation"},
    )
    assert write.status_code == 403
    none = httpx.post(
        sandbox.token_url,
        auth=("narrow", "s3"),
        data={"grant_type": "client_credentials", "scope": "system/Patient.read"},
    )
    assert none.status_code == 400 and none.json()["error"] == "invalid_scope"


def test_missing_invalid_and_expired_tokens_get_401(sandbox: SandboxServer) -> None:
    assert _get(sandbox, "/Patient/pt-00001", None).status_code == 401
    assert _get(sandbox, "/Patient/pt-00001", "made-up").status_code == 401
    token = sandbox.token()
    assert _get(sandbox, "/Patient/pt-00001", token).status_code == 200
    assert sandbox.expire_tokens() >= 1
    resp = _get(sandbox, "/Patient/pt-00001", token)
    assert resp.status_code == 401 and "WWW-Authenticate" in resp.headers
    sandbox.configure(token_lifetime_seconds=1.5)
    short = sandbox.token()
    assert _get(sandbox, "/Patient/pt-00001", short).status_code == 200
    time.sleep(1.6)
    assert _get(sandbox, "/Patient/pt-00001", short).status_code == 401
    assert sandbox.stats()["tokens_issued"] >= 2


def test_jwks_url_is_fetched(sandbox: SandboxServer) -> None:
    inline = register_jwt_client(sandbox, "ES384")
    jwk = jwt.algorithms.get_default_algorithms()["ES384"].to_jwk(
        inline.private_key.public_key(), as_dict=True
    )
    body = orjson.dumps({"keys": [{**jwk, "kid": inline.kid, "alg": "ES384"}]})

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
        sandbox.register_client("by-url", ["system/*.read"], jwks_url=url)
        by_url = JwtClient("by-url", inline.kid, "ES384", inline.private_key, sandbox.token_url)
        assert by_url.token_request().status_code == 200
        assert by_url.token_request(by_url.assertion(kid="rotated-away")).status_code == 400
    finally:
        server.shutdown()
        server.server_close()
