"""Receiving an inbound webhook: authenticate, store the ids, acknowledge, queue.

Order matters: the event row is committed before the sender gets its 202, so an accepted
event is never lost; the processing job is queued after the commit, so a worker always finds
the row. Rejections are counted per connection and reason (`rejections`), never stored one row
each, so they are visible without an attacker being able to fill the disk with them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session

from ...adapters.signatures import verify_hub_signature
from ...config import Settings
from ...models import EHRConnection, InboundAuth, InboundStatus, SignatureAlgorithm
from ...models.types import MAX_ROW_ID
from ..crypto import SecretDecryptError, decrypt
from . import rejections, signing
from .notifications import EventInfo, MalformedEvent, describe
from .store import store_one

log = logging.getLogger(__name__)
ALGORITHM_PARAM = "inbound_signature_algorithm"  # kept in vendor_params (no column for it)


@dataclass(frozen=True)
class Outcome:
    """The answer to give the sender."""

    status_code: int
    reason: str
    event_id: int | None = None


def record_rejection(
    session: Session,
    *,
    connection_id: int | None,
    reason: str,
    status: InboundStatus = InboundStatus.REJECTED,
) -> None:
    """Count one rejection (committed now: the request fails right after); nothing of the
    request is stored, and the count takes one row however many arrive."""
    rejections.count(session, connection_id=connection_id, reason=reason, status=status)


@dataclass(frozen=True)
class InboundSecret:
    """A connection's inbound scheme with its decrypted secret (kept in memory only)."""

    auth: str | None
    secret: str | None
    algorithm: SignatureAlgorithm


# connection id -> (read at, scheme). The receiver is the hot path: re-reading and
# decrypting per request costs more than the whole signature check. A change made through
# `set_inbound_auth` clears this process's entry at once; other processes see it within
# CACHE_SECONDS.
_CACHE: dict[int, tuple[float, InboundSecret]] = {}
CACHE_SECONDS = 5.0


def cached_secret(connection_id: int) -> InboundSecret | None:
    """The scheme from this process's cache, without the database (None: not cached)."""
    cached = _CACHE.get(connection_id)
    if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    return None


def forget(connection_id: int) -> None:
    """Drop a cached scheme (its connection's inbound auth changed)."""
    _CACHE.pop(connection_id, None)


def secret_for(session: Session, connection_id: int) -> InboundSecret | None:
    """The connection's scheme, or None when there is no such connection."""
    cached = cached_secret(connection_id)
    if cached is not None:
        return cached
    if not 0 < connection_id <= MAX_ROW_ID:
        return None
    connection = session.get(EHRConnection, connection_id)
    if connection is None:
        return None
    try:
        secret = (
            decrypt(connection.inbound_secret_encrypted)
            if connection.inbound_secret_encrypted
            else None
        )
    except SecretDecryptError:
        secret = None
    algorithm = SignatureAlgorithm(
        (connection.vendor_params or {}).get(ALGORITHM_PARAM, SignatureAlgorithm.HMAC_SHA256)
    )
    entry = InboundSecret(connection.inbound_auth, secret, algorithm)
    _CACHE[connection_id] = (time.monotonic(), entry)
    return entry


def authenticate(
    config: InboundSecret, body: bytes, headers: Mapping[str, str], settings: Settings
) -> None:
    """Raise SignatureError unless the request proves it comes from this connection's EHR."""
    secret, auth = config.secret or "", config.auth
    if auth == InboundAuth.HOLOVITALS_HMAC:
        signing.verify(
            body,
            headers.get(signing.SIGNATURE_HEADER),
            secret,
            algorithm=config.algorithm,
            tolerance=settings.webhook_signature_tolerance,
        )
    elif auth == InboundAuth.WEBSUB_HMAC:
        if not verify_hub_signature(body, headers.get("X-Hub-Signature"), secret):
            raise signing.SignatureError("bad signature")
    elif auth == InboundAuth.PLAIN_HMAC:
        signing.verify_plain(body, headers.get("X-Signature"), secret)
    elif auth == InboundAuth.BEARER:
        signing.verify_bearer(headers.get("Authorization"), secret)
    else:
        raise signing.SignatureError("inbound webhooks not configured")


def check(
    config: InboundSecret | None, body: bytes, headers: Mapping[str, str], settings: Settings
) -> EventInfo | Outcome:
    """Authenticate and read one inbound webhook, without touching the database.

    Returns:
        What the event is about, or the rejection to record and answer: 404 unknown
        connection, 403 not configured, 401 bad or missing signature / stale timestamp,
        400 malformed body.
    """
    if config is None:
        return Outcome(404, "unknown connection")
    if not config.auth or not config.secret:
        return Outcome(403, "not configured")
    try:
        authenticate(config, body, headers, settings)
    except signing.SignatureError as exc:
        return Outcome(401, str(exc))
    try:
        return describe(body)
    except MalformedEvent as exc:
        return Outcome(400, f"malformed: {exc}")


def reject(session: Session, connection_id: int, outcome: Outcome) -> Outcome:
    """Count a rejection (an unknown connection is counted without one)."""
    known = None if outcome.status_code == 404 else connection_id
    record_rejection(session, connection_id=known, reason=outcome.reason)
    return outcome


def receive(
    session: Session,
    *,
    connection_id: int,
    body: bytes,
    headers: Mapping[str, str],
    settings: Settings,
) -> Outcome:
    """Handle one inbound webhook whose body has already been read (within the size cap):
    check it, store its ids and queue it (202), or record and return the rejection
    (see `check`; 409 for a replayed event)."""
    result = check(secret_for(session, connection_id), body, headers, settings)
    if isinstance(result, Outcome):
        return reject(session, connection_id, result)
    return stored(session, connection_id, store_one(session, connection_id, result))


def stored(session: Session, connection_id: int, event_id: int | None) -> Outcome:
    """The answer for a store attempt: accepted, or a replay (counted as a duplicate)."""
    if event_id is None:
        record_rejection(
            session,
            connection_id=connection_id,
            reason="replayed event id",
            status=InboundStatus.DUPLICATE,
        )
        return Outcome(409, "event already received")
    return Outcome(202, "accepted", event_id)
