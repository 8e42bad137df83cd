"""SMART Backend Services token endpoint and bearer-token checks.

Tokens are opaque random strings kept in memory with their expiry and granted scopes.
Assertion failures answer 400 invalid_client (SMART backend services); a wrong shared
secret answers 401 invalid_client with WWW-Authenticate, as OAuth 2.0 asks for Basic auth.
"""

from __future__ import annotations

import base64
import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse

from holovitals_sync.sandbox.config import ClientRegistration
from holovitals_sync.sandbox.responses import FhirError
from holovitals_sync.sandbox.scopes import Scope, grant, parse_scopes
from holovitals_sync.sandbox.vendors import VendorProfile

log = logging.getLogger(__name__)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_LIFETIME = 300  # seconds; SMART: exp at most five minutes ahead
CLOCK_SKEW = 5
TOKEN_PATH = "/fhir/auth/token"


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass
class Grant:
    client_id: str
    scopes: list[Scope]
    expires_at: float

    def allows(self, rtype: str, perm: str) -> bool:
        return any(s.allows(rtype, perm) for s in self.scopes)


class AuthState:
    """Registered clients, issued tokens and seen assertion ids (replay protection)."""

    def __init__(self, clients: list[ClientRegistration], lifetime: float) -> None:
        self._lock = threading.Lock()
        self.clients = {c.client_id: c for c in clients}
        self.lifetime = lifetime
        self.tokens: dict[str, Grant] = {}
        self.seen_jti: dict[str, float] = {}
        self.issued = 0

    def register(self, client: ClientRegistration) -> None:
        with self._lock:
            self.clients[client.client_id] = client

    def issue(self, client_id: str, scopes: list[Scope]) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = Grant(client_id, scopes, time.time() + self.lifetime)
            self.issued += 1
        return token, max(1, math.ceil(self.lifetime))

    def expire_all(self) -> int:
        with self._lock:
            n = len(self.tokens)
            self.tokens.clear()
            return n

    def check(self, authorization: str | None) -> Grant:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise FhirError(401, "missing bearer token", "login")
        grant_ = self.tokens.get(authorization[7:].strip())
        if grant_ is None:
            raise FhirError(401, "invalid or revoked access token", "login")
        if grant_.expires_at <= time.time():
            raise FhirError(401, "access token expired", "expired")
        return grant_

    def remember_jti(self, jti: str, exp: float) -> None:
        now = time.time()
        with self._lock:
            self.seen_jti = {j: e for j, e in self.seen_jti.items() if e > now - CLOCK_SKEW}
            if jti in self.seen_jti:
                raise OAuthError("invalid_client", "assertion jti already used")
            self.seen_jti[jti] = exp


def _audiences(request: Request) -> list[str]:
    # The client may address us as 127.0.0.1 or localhost; both name this endpoint.
    url = urlsplit(str(request.url))
    port = f":{url.port}" if url.port else ""
    return [
        urlunsplit((url.scheme, f"{h}{port}", url.path, "", ""))
        for h in ("127.0.0.1", "localhost", url.hostname or "")
    ]


def _find_key(jwks: dict, header: dict) -> jwt.PyJWK:
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise OAuthError("invalid_client", "assertion alg must be RS384 or ES384")
    for jwk in jwks.get("keys", []):
        if jwk.get("kid") == kid:
            try:
                return jwt.PyJWK(jwk, algorithm=alg)
            except jwt.PyJWTError:
                raise OAuthError("invalid_client", "registered key unusable for alg") from None
    raise OAuthError("invalid_client", "assertion kid not in the client's JWKS")


def assertion_client(auth: AuthState, assertion: str) -> tuple[ClientRegistration, dict]:
    """The registered client an (unverified) assertion claims to come from, and its header."""
    try:
        header = jwt.get_unverified_header(assertion)
        iss = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise OAuthError("invalid_client", "client_assertion is not a JWT") from None
    client = auth.clients.get(iss) if isinstance(iss, str) else None
    if client is None or not (client.jwks or client.jwks_url):
        raise OAuthError("invalid_client", "unknown client or no JWKS registered")
    return client, header


async def client_jwks(client: ClientRegistration) -> dict:
    """The registered JWKS, or the one published at the client's JWKS URL (fetched each
    time, so key rotation on the client side is seen at once)."""
    if not client.jwks_url:
        return client.jwks or {}
    try:
        async with httpx.AsyncClient(timeout=5.0) as http:
            resp = await http.get(client.jwks_url)
            resp.raise_for_status()
            return resp.json()
    except (httpx.HTTPError, ValueError):
        raise OAuthError("invalid_client", "client JWKS URL could not be read") from None


def verify_assertion(
    client: ClientRegistration,
    header: dict,
    jwks: dict,
    assertion: str,
    audiences: list[str],
    auth: AuthState,
) -> str:
    """Checks a private_key_jwt client assertion; returns the client id."""
    key = _find_key(jwks, header)
    try:
        claims = jwt.decode(
            assertion,
            key.key,
            algorithms=[header["alg"]],
            audience=audiences,
            issuer=client.client_id,
            options={"require": ["exp", "iss", "sub", "aud", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise OAuthError("invalid_client", f"assertion rejected: {type(exc).__name__}") from None
    if claims["sub"] != client.client_id:
        raise OAuthError("invalid_client", "assertion sub must equal iss")
    if claims["exp"] > time.time() + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
        raise OAuthError("invalid_client", "assertion exp more than 5 minutes ahead")
    auth.remember_jti(str(claims["jti"]), float(claims["exp"]))
    return client.client_id


def _secret_client(auth: AuthState, request: Request, form: dict[str, str]) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "malformed Basic credentials", 401) from None
    else:
        cid, secret = form.get("client_id", ""), form.get("client_secret", "")
    client = auth.clients.get(cid)
    if client is None or not client.secret or not secrets.compare_digest(client.secret, secret):
        raise OAuthError("invalid_client", "client authentication failed", 401)
    return cid


def _check_method(profile: VendorProfile, request: Request, form: dict[str, str]) -> None:
    """The vendor mode's token-endpoint authentication methods and assertion algorithms."""
    if "client_assertion" in form:
        method = "private_key_jwt"
    elif request.headers.get("authorization", "").lower().startswith("basic "):
        method = "client_secret_basic"
    else:
        method = "client_secret_post"
    if method not in profile.token_auth_methods:
        raise OAuthError(
            "invalid_client",
            f"{profile.display_name} does not accept {method}; "
            f"use {', '.join(sorted(profile.token_auth_methods))}",
        )
    if method == "private_key_jwt":
        try:
            alg = jwt.get_unverified_header(form["client_assertion"]).get("alg")
        except jwt.PyJWTError:
            raise OAuthError("invalid_client", "client_assertion is not a JWT") from None
        if alg not in profile.signing_algs:
            raise OAuthError(
                "invalid_client",
                f"{profile.display_name} accepts {'/'.join(profile.signing_algs)} assertions only",
            )


async def _authenticate(
    auth: AuthState, request: Request, form: dict[str, str], profile: VendorProfile
) -> str:
    if form.get("grant_type") != "client_credentials":
        raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
    _check_method(profile, request, form)
    if "client_assertion" in form:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", "unsupported client_assertion_type")
        assertion = form["client_assertion"]
        client, header = assertion_client(auth, assertion)
        if profile.jwks_url_required and not client.jwks_url:
            raise OAuthError(
                "invalid_client",
                f"{profile.display_name} needs the client's keys registered as a JWKS URL",
            )
        jwks = await client_jwks(client)
        client_id = verify_assertion(client, header, jwks, assertion, _audiences(request), auth)
        if form.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_client", "client_id does not match the assertion")
        return client_id
    return _secret_client(auth, request, form)


async def token_endpoint(request: Request) -> JSONResponse:
    sandbox = request.app.state.sandbox
    auth: AuthState = sandbox.auth
    body = (await request.body()).decode("utf-8", "replace")
    form = {k: v[0] for k, v in parse_qs(body).items()}
    try:
        client_id = await _authenticate(auth, request, form, sandbox.profile)
        allowed = parse_scopes(" ".join(auth.clients[client_id].scopes))
        requested = parse_scopes(form["scope"]) if form.get("scope") else allowed
        granted = grant(requested, allowed)
        if not granted:
            raise OAuthError("invalid_scope", "none of the requested scopes is allowed")
    except OAuthError as err:
        log.info("token request refused: %s", err.error)
        headers = {"WWW-Authenticate": "Basic"} if err.status == 401 else None
        return JSONResponse(
            {"error": err.error, "error_description": err.description}, err.status, headers=headers
        )
    token, expires_in = auth.issue(client_id, granted)
    return JSONResponse(
        {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": expires_in,
            "scope": " ".join(s.text for s in granted),
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
