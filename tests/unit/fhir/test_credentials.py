"""Client assertion claims and the token requests of each credential type."""

import base64
import time

import jwt
import pytest

from holovitals_sync.fhir.credentials import (
    ASSERTION_TYPE,
    ClientSecret,
    PrivateKeyJwt,
    basic_header,
    build_client_assertion,
)
from holovitals_sync.fhir.keys import generate_key_pair

TOKEN_URL = "https://auth.example/oauth2/token"


@pytest.fixture(scope="module", params=["RS384", "ES384"])
def pair(request: pytest.FixtureRequest):
    return generate_key_pair(request.param)


def decode(assertion: str, pair) -> dict:
    key = jwt.PyJWK(pair.public_jwk, algorithm=pair.alg).key
    return jwt.decode(assertion, key, algorithms=[pair.alg], audience=TOKEN_URL)


def test_assertion_header_and_claims(pair) -> None:
    before = int(time.time())
    assertion = build_client_assertion(
        client_id="client-1",
        token_url=TOKEN_URL,
        private_key=pair.private_key_pem,
        kid=pair.kid,
        alg=pair.alg,
    )
    header = jwt.get_unverified_header(assertion)
    assert header == {"alg": pair.alg, "kid": pair.kid, "typ": "JWT"}
    claims = decode(assertion, pair)
    assert claims["iss"] == claims["sub"] == "client-1"
    assert claims["aud"] == TOKEN_URL
    assert before <= claims["iat"] <= int(time.time())
    assert 240 <= claims["exp"] - claims["iat"] <= 300


def test_jti_is_unique(pair) -> None:
    creds = PrivateKeyJwt(client_id="c", private_key_pem=pair.private_key_pem, scope="system/*.rs")
    jtis = {
        decode(creds.token_request(TOKEN_URL).form["client_assertion"], pair)["jti"]
        for _ in range(20)
    }
    assert len(jtis) == 20


def test_private_key_jwt_form(pair) -> None:
    creds = PrivateKeyJwt(
        client_id="c", private_key_pem=pair.private_key_pem, scope="system/Patient.rs"
    )
    request = creds.token_request(TOKEN_URL)
    assert request.form["grant_type"] == "client_credentials"
    assert request.form["scope"] == "system/Patient.rs"
    assert request.form["client_assertion_type"] == ASSERTION_TYPE
    assert creds.alg == pair.alg
    assert "PRIVATE" not in repr(creds)


def test_assertion_lifetime_limit(pair) -> None:
    with pytest.raises(ValueError):
        build_client_assertion(
            client_id="c",
            token_url=TOKEN_URL,
            private_key=pair.private_key_pem,
            kid="k",
            alg=pair.alg,
            lifetime=301,
        )


def test_client_secret_basic() -> None:
    creds = ClientSecret(client_id="my client", client_secret="p@ss:word", scope="system/*.rs")
    request = creds.token_request(TOKEN_URL)
    assert "client_secret" not in request.form
    raw = base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")).decode()
    assert raw == "my+client:p%40ss%3Aword"  # RFC 6749 2.3.1: form-encoded first
    assert "p@ss" not in repr(creds)


def test_client_secret_post() -> None:
    creds = ClientSecret(client_id="c", client_secret="s", scope="x", method="client_secret_post")
    request = creds.token_request(TOKEN_URL)
    assert request.form["client_id"] == "c" and request.form["client_secret"] == "s"
    assert not request.headers


def test_basic_header_plain_values() -> None:
    assert (
        basic_header("holovitals-demo", "demo-secret")
        == "Basic " + base64.b64encode(b"holovitals-demo:demo-secret").decode()
    )
