"""What `holovitals-sync keys generate --alg RS384` calls.

The CLI prints the JWKS for the administrator to register with the EHR and hands the private
key PEM to the caller, which stores it encrypted (services.crypto) - never on stdout by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from holovitals_sync.fhir.keys import SUPPORTED_ALGORITHMS, generate_key_pair


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A new signing key: `jwks_json` is public, `private_key_pem` is secret."""

    alg: str
    kid: str
    jwks_json: str
    private_key_pem: str

    def __repr__(self) -> str:
        return f"GeneratedKey(alg={self.alg!r}, kid={self.kid!r})"


def generate_signing_key(alg: str = "RS384") -> GeneratedKey:
    """Generate a key pair for SMART Backend Services and its public JWKS.

    Args:
        alg: "RS384" or "ES384".

    Returns:
        The key, with the pretty-printed JWKS ready to print.

    Raises:
        ValueError: Unsupported algorithm.
    """
    if alg not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"unsupported algorithm {alg!r}; use one of {SUPPORTED_ALGORITHMS}")
    pair = generate_key_pair(alg)
    jwks = orjson.dumps(pair.jwks, option=orjson.OPT_INDENT_2).decode()
    return GeneratedKey(alg=alg, kid=pair.kid, jwks_json=jwks, private_key_pem=pair.private_key_pem)
