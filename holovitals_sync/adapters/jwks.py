"""The public JWKS of a connection, for the backend to serve at a stable URL.

Epic, eClinicalWorks and Oracle Health register a JWKS URL instead of an uploaded key and
fetch it at each token request, so the document must list the current key and, during a
rotation, the previous one until the EHR has seen the new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from holovitals_sync.fhir.keys import key_pair_from_pem


def connection_jwks(private_key_pems: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Public keys of the given private keys (decrypted by the caller), newest first.

    Args:
        private_key_pems: The connection's signing keys (current first).

    Returns:
        `{"keys": [...]}` with `kid`, `alg`, `use` and no private members; duplicates
        (same kid) are listed once.

    Raises:
        ValueError: A PEM is not a supported RSA or EC P-384 private key.
    """
    keys: dict[str, dict[str, Any]] = {}
    for pem in private_key_pems:
        jwk = dict(key_pair_from_pem(pem).public_jwk)
        jwk.setdefault("use", "sig")
        keys.setdefault(jwk["kid"], jwk)
    return {"keys": list(keys.values())}
