"""Key pairs for SMART Backend Services client assertions, and the JWKS registered with EHRs.

The private key leaves this module only as PEM for the caller to encrypt at rest; the public
half is published as a JWKS whose `kid` is the RFC 7638 thumbprint, so the same key always
gets the same id and nobody has to invent one.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

Algorithm = Literal["RS384", "ES384"]
SUPPORTED_ALGORITHMS: tuple[str, ...] = ("RS384", "ES384")
RSA_KEY_SIZE = 3072  # above the 2048-bit floor; still fast to sign with


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A generated or loaded key: private PEM (store encrypted), public JWK and its kid."""

    alg: str
    kid: str
    private_key_pem: str
    public_jwk: dict[str, str]

    @property
    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWKS an administrator registers with the EHR."""
        return {"keys": [self.public_jwk]}


def _b64url_uint(value: int) -> str:
    length = max(1, (value.bit_length() + 7) // 8)
    return _b64url(value.to_bytes(length, "big"))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of a public RSA or EC key.

    Args:
        jwk: The public JWK (at least the required members of its key type).

    Returns:
        The thumbprint string.
    """
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    # Required members only, sorted, no whitespace: orjson writes dicts without spaces.
    canonical = orjson.dumps({m: jwk[m] for m in members}, option=orjson.OPT_SORT_KEYS)
    return _b64url(hashlib.sha256(canonical).digest())


def _public_members(private_key: Any) -> tuple[str, dict[str, str]]:
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return "RS384", {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP384R1):
        numbers = public.public_numbers()
        size = 48  # P-384 coordinates are always 48 bytes, left-padded (RFC 7518 6.2.1.2)
        return "ES384", {
            "kty": "EC",
            "crv": "P-384",
            "x": _b64url(numbers.x.to_bytes(size, "big")),
            "y": _b64url(numbers.y.to_bytes(size, "big")),
        }
    raise ValueError("unsupported key: use RSA (2048 bits or more) or EC P-384")


def public_jwk(private_key: Any) -> dict[str, str]:
    """Build the public JWK (with kid, alg, use) of a private key object.

    Args:
        private_key: A `cryptography` RSA or EC P-384 private key.

    Returns:
        The JWK dict: kty, kid, alg, use and n/e or crv/x/y.
    """
    alg, members = _public_members(private_key)
    if alg == "RS384" and private_key.key_size < 2048:
        raise ValueError("RSA keys must be at least 2048 bits")
    return {"kty": members["kty"], "kid": thumbprint(members), "alg": alg, "use": "sig"} | {
        k: v for k, v in members.items() if k != "kty"
    }


def load_private_key(pem: str | bytes, password: bytes | None = None) -> Any:
    """Load a PEM private key (PKCS#8 or traditional). Raises ValueError if unsupported.

    Args:
        pem: The PEM text.
        password: Its passphrase, if it is encrypted.

    Returns:
        The `cryptography` private key object.
    """
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=password)
    _public_members(key)  # refuses unsupported key types early
    return key


def key_pair_from_pem(pem: str | bytes, password: bytes | None = None) -> KeyPair:
    """Load a private key PEM and derive its algorithm, kid and public JWK.

    Args:
        pem: The PEM text of an RSA or EC P-384 private key.
        password: Its passphrase, if it is encrypted.

    Returns:
        The key pair (the PEM is returned unencrypted, as PKCS#8).
    """
    key = load_private_key(pem, password)
    jwk = public_jwk(key)
    return KeyPair(alg=jwk["alg"], kid=jwk["kid"], private_key_pem=_pem(key), public_jwk=jwk)


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def generate_key_pair(alg: str = "RS384") -> KeyPair:
    """Generate a signing key for SMART client assertions.

    Args:
        alg: "RS384" (RSA 3072) or "ES384" (EC P-384).

    Returns:
        The key pair: private PEM for encrypted storage, public JWK/JWKS to register.
    """
    if alg == "RS384":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)
    elif alg == "ES384":
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        raise ValueError(f"unsupported algorithm {alg!r}; use one of {SUPPORTED_ALGORITHMS}")
    jwk = public_jwk(key)
    return KeyPair(alg=alg, kid=jwk["kid"], private_key_pem=_pem(key), public_jwk=jwk)


def jwks_json(pairs: list[KeyPair]) -> str:
    """Serialise the public JWKS of several keys (e.g. old and new during a rotation).

    Args:
        pairs: The key pairs whose public halves to publish.

    Returns:
        The JWKS document as JSON text.
    """
    return orjson.dumps({"keys": [p.public_jwk for p in pairs]}).decode()
