"""Webhook signature checks for vendor notifications.

athenahealth signs FHIR Subscription notifications WebSub-style when the subscription was
created with `X-Hub-Secret`: `X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, body)>` [A5].
"""

from __future__ import annotations

import hashlib
import hmac

HUB_HEADER = "X-Hub-Signature"
_PREFIX = "sha256="


def hub_signature(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature` value for a body.

    Args:
        body: The exact request body bytes.
        secret: The shared secret given as `X-Hub-Secret`.

    Returns:
        "sha256=<hex>".
    """
    return _PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hub_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Check an `X-Hub-Signature: sha256=<hex>` header in constant time.

    Args:
        body: The exact raw body (before any JSON parsing).
        header: The header value as received (None when missing).
        secret: The shared secret.

    Returns:
        True only for a well-formed sha256 signature over exactly these bytes.
    """
    if not header or not secret:
        return False
    scheme, sep, digest = header.strip().partition("=")
    if not sep or scheme.lower() != "sha256":
        return False
    expected = hub_signature(body, secret)[len(_PREFIX) :]
    return hmac.compare_digest(expected.encode(), digest.strip().lower().encode())
