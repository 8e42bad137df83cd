"""HMAC signatures: the project's `X-HoloVitals-Signature` header, both ways.

Header format: `t=<unix seconds>,v1=<hex HMAC(secret, f"{t}." + body)>`; during a secret
rotation the header carries one `v1=` per signing secret. The timestamp is signed with the
body so a captured request cannot be replayed later with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from ...models import SignatureAlgorithm

SIGNATURE_HEADER = "X-HoloVitals-Signature"
EVENT_ID_HEADER = "X-HoloVitals-Event-Id"
EVENT_TYPE_HEADER = "X-HoloVitals-Event-Type"

_DIGESTS = {
    SignatureAlgorithm.HMAC_SHA256: hashlib.sha256,
    SignatureAlgorithm.HMAC_SHA512: hashlib.sha512,
}


class SignatureError(Exception):
    """Why a signature was refused; the message is a short reason safe to store."""


def hmac_hex(
    secret: str, message: bytes, algorithm: SignatureAlgorithm = SignatureAlgorithm.HMAC_SHA256
) -> str:
    """Hex HMAC of a message with the given algorithm."""
    return hmac.new(secret.encode(), message, _DIGESTS[algorithm]).hexdigest()


def sign(
    body: bytes,
    secrets: Sequence[str],
    *,
    algorithm: SignatureAlgorithm,
    timestamp: int | None = None,
) -> str:
    """The `X-HoloVitals-Signature` value for a body, one `v1=` per secret.

    Args:
        body: The exact bytes that will be sent.
        secrets: The current secret first, then a previous one still in its grace period.
        algorithm: HMAC-SHA256 or HMAC-SHA512.
        timestamp: Unix seconds (now when omitted).
    """
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + body
    parts = [f"t={t}"] + [f"v1={hmac_hex(s, signed, algorithm)}" for s in secrets]
    return ",".join(parts)


def parse_header(header: str) -> tuple[int, list[str]]:
    """The timestamp and the v1 digests of a header; SignatureError when malformed."""
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and value.isdecimal():
            timestamp = int(value)
        elif key == "v1":
            digests.append(value.strip().lower())
    if timestamp is None or not digests:
        raise SignatureError("malformed signature header")
    return timestamp, digests


def verify(
    body: bytes,
    header: str | None,
    secret: str,
    *,
    algorithm: SignatureAlgorithm,
    tolerance: int,
    now: float | None = None,
) -> None:
    """Check a `X-HoloVitals-Signature` header in constant time.

    Raises:
        SignatureError: missing or malformed header, a timestamp outside `tolerance`
            seconds, or no `v1` matching this body.
    """
    if not header:
        raise SignatureError("missing signature")
    timestamp, digests = parse_header(header)
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise SignatureError("stale timestamp")
    expected = hmac_hex(secret, f"{timestamp}.".encode() + body, algorithm).encode()
    # Compare against every v1 without stopping early, so timing says nothing about which.
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(expected, digest.encode())
    if not matched:
        raise SignatureError("bad signature")


def verify_plain(body: bytes, header: str | None, secret: str) -> None:
    """Check a plain hex HMAC-SHA256 of the body (`X-Signature`, Medplum and similar)."""
    if not header:
        raise SignatureError("missing signature")
    expected = hmac_hex(secret, body).encode()
    if not hmac.compare_digest(expected, header.strip().lower().encode()):
        raise SignatureError("bad signature")


def verify_bearer(header: str | None, token: str) -> None:
    """Check `Authorization: Bearer <token>` in constant time."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise SignatureError("missing bearer token")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise SignatureError("bad bearer token")
