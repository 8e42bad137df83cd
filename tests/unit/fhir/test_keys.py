"""Key generation, JWKS building and RFC 7638 thumbprints."""

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from holovitals_sync.fhir.keygen import generate_signing_key
from holovitals_sync.fhir.keys import generate_key_pair, key_pair_from_pem, thumbprint


def test_rfc7638_example_thumbprint() -> None:
    # The worked example of RFC 7638 section 3.1.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
        "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-"
        "65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLy"
        "rdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzK"
        "nqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_generate_rs384() -> None:
    pair = generate_key_pair("RS384")
    (jwk,) = pair.jwks["keys"]
    assert jwk["kty"] == "RSA" and jwk["alg"] == "RS384" and jwk["use"] == "sig"
    assert jwk["kid"] == pair.kid == thumbprint(jwk)
    assert {"n", "e"} <= set(jwk) and "d" not in jwk
    key = serialization.load_pem_private_key(pair.private_key_pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048


def test_generate_es384() -> None:
    pair = generate_key_pair("ES384")
    (jwk,) = pair.jwks["keys"]
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-384" and jwk["alg"] == "ES384"
    assert {"x", "y"} <= set(jwk) and "d" not in jwk
    assert jwk["kid"] == thumbprint(jwk)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_jwks_verifies_a_signature(alg: str) -> None:
    pair = generate_key_pair(alg)
    token = jwt.encode({"a": 1}, pair.private_key_pem, algorithm=alg)
    public = jwt.PyJWK(pair.public_jwk, algorithm=alg)
    assert jwt.decode(token, public.key, algorithms=[alg]) == {"a": 1}


def test_load_pem_gives_same_kid() -> None:
    pair = generate_key_pair("ES384")
    again = key_pair_from_pem(pair.private_key_pem)
    assert again.kid == pair.kid and again.alg == "ES384"
    assert again.public_jwk == pair.public_jwk


def test_refuses_small_rsa_and_other_curves() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p256 = ec.generate_private_key(ec.SECP256R1())
    for key in (small, p256):
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(ValueError):
            key_pair_from_pem(pem)


def test_generate_refuses_unknown_alg() -> None:
    with pytest.raises(ValueError):
        generate_key_pair("HS256")
    with pytest.raises(ValueError):
        generate_signing_key("RS256")


def test_cli_helper_keeps_private_key_out_of_repr() -> None:
    key = generate_signing_key("ES384")
    assert "PRIVATE" not in repr(key)
    assert key.kid in key.jwks_json and "PRIVATE" not in key.jwks_json
