"""The JWKS a connection publishes for vendors that register a JWKS URL."""

from __future__ import annotations

import jwt
import pytest

from holovitals_sync.adapters import connection_jwks
from holovitals_sync.fhir.keys import generate_key_pair


def test_jwks_lists_public_keys_once_and_verifies_assertions() -> None:
    current, previous = generate_key_pair("RS384"), generate_key_pair("ES384")
    doc = connection_jwks(
        [current.private_key_pem, previous.private_key_pem, current.private_key_pem]
    )
    assert [k["kid"] for k in doc["keys"]] == [current.kid, previous.kid]
    for key in doc["keys"]:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
        assert key["use"] == "sig"
    token = jwt.encode(
        {"iss": "c"}, current.private_key_pem, algorithm="RS384", headers={"kid": current.kid}
    )
    public = jwt.PyJWK(doc["keys"][0], algorithm="RS384")
    assert jwt.decode(token, public.key, algorithms=["RS384"])["iss"] == "c"


def test_jwks_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        connection_jwks(["not a key"])
