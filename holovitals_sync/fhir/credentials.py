"""Credentials of a connection and the token request each one makes.

SMART Backend Services (`PrivateKeyJwt`: a signed client assertion), OAuth client
credentials with a secret (`ClientSecret`, HTTP Basic or form post), a static bearer token
(`StaticToken`) for generic servers, and `None` for open servers.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import jwt

from holovitals_sync.fhir.keys import load_private_key, public_jwk

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART allows at most 5 minutes; stay under it so clock skew with the EHR does not bite.
ASSERTION_LIFETIME = 270


def build_client_assertion(
    *,
    client_id: str,
    token_url: str,
    private_key: Any,
    kid: str,
    alg: str,
    lifetime: int = ASSERTION_LIFETIME,
    now: float | None = None,
) -> str:
    """Sign a SMART Backend Services client assertion.

    Args:
        client_id: The registered client id (`iss` and `sub`).
        token_url: The token endpoint (`aud`).
        private_key: The signing key: a `cryptography` key object or its PEM.
        kid: Key id registered in the JWKS (JWT header).
        alg: "RS384" or "ES384".
        lifetime: Seconds until `exp`; at most 300.
        now: Current Unix time (tests).

    Returns:
        The compact JWS.
    """
    if not 0 < lifetime <= 300:
        raise ValueError("assertion lifetime must be within 1..300 seconds")
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": issued,
        "exp": issued + lifetime,
        # Servers refuse a jti seen before; uuid4 is 122 random bits.
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, private_key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """The form and headers of one token request (the secret parts stay out of repr)."""

    form: dict[str, str] = field(repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class PrivateKeyJwt:
    """SMART Backend Services with an asymmetric key (RS384 or ES384).

    The PEM is parsed once here: loading an RSA key validates it, which costs far more than
    signing, and a connection signs a fresh assertion for every token.

    Attributes:
        client_id: The client id registered with the EHR.
        private_key_pem: The private key (decrypted by the caller just before use).
        scope: Space-separated scopes, e.g. `system/Patient.rs system/Observation.rs`.
        token_url: Token endpoint; None to discover it from the server.
        kid: Key id; None to use the RFC 7638 thumbprint of the key.
        alg: Derived from the key type: RS384 for RSA, ES384 for EC P-384.
    """

    client_id: str
    private_key_pem: str = field(repr=False)
    scope: str
    token_url: str | None = None
    kid: str | None = None
    alg: str = field(init=False)
    _key: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = load_private_key(self.private_key_pem)  # fails early on a bad key
        jwk = public_jwk(key)
        # Frozen dataclass: derived fields are set once, here.
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "alg", jwk["alg"])
        object.__setattr__(self, "kid", self.kid or jwk["kid"])

    def token_request(self, token_url: str) -> TokenRequest:
        """Build the token request with a fresh assertion.

        Args:
            token_url: The token endpoint (also the assertion's audience).

        Returns:
            The token request.
        """
        assertion = build_client_assertion(
            client_id=self.client_id,
            token_url=token_url,
            private_key=self._key,
            kid=str(self.kid),
            alg=self.alg,
        )
        return TokenRequest(
            form={
                "grant_type": "client_credentials",
                "scope": self.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            }
        )

    def secrets(self) -> tuple[str, ...]:
        """Values to mask in error text."""
        return ()


@dataclass(frozen=True)
class ClientSecret:
    """OAuth 2.0 client credentials with a shared secret.

    Attributes:
        client_id: The client id.
        client_secret: The secret.
        scope: Space-separated scopes.
        token_url: Token endpoint; None to discover it.
        method: `client_secret_basic` (HTTP Basic) or `client_secret_post` (form fields).
    """

    client_id: str
    client_secret: str = field(repr=False)
    scope: str
    token_url: str | None = None
    method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"

    def token_request(self, token_url: str) -> TokenRequest:
        """Build the token request.

        Args:
            token_url: The token endpoint (unused: no assertion to address).

        Returns:
            The token request.
        """
        form = {"grant_type": "client_credentials", "scope": self.scope}
        if self.method == "client_secret_post":
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
            return TokenRequest(form=form)
        return TokenRequest(
            form=form, headers={"Authorization": basic_header(self.client_id, self.client_secret)}
        )

    def secrets(self) -> tuple[str, ...]:
        """Values to mask in error text."""
        return (self.client_secret,)


def basic_header(client_id: str, client_secret: str) -> str:
    """HTTP Basic value per RFC 6749 2.3.1: id and secret form-url-encoded before base64.

    Args:
        client_id: The client id.
        client_secret: The secret.

    Returns:
        The `Authorization` header value.
    """

    # RFC 6749 uses application/x-www-form-urlencoded, where a space is '+'.
    def encode(value: str) -> str:
        return quote(value, safe="").replace("%20", "+")

    raw = f"{encode(client_id)}:{encode(client_secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class StaticToken:
    """A bearer token issued out of band (generic servers, tests)."""

    token: str = field(repr=False)


Credentials = PrivateKeyJwt | ClientSecret | StaticToken
