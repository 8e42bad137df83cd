"""Setting how a connection's EHR proves its inbound webhooks are genuine."""

from __future__ import annotations

import secrets

from pydantic import BaseModel, Field
from sqlmodel import Session

from ...models import EHRConnection, InboundAuth, SignatureAlgorithm
from ...models.types import utcnow
from .. import audit
from ..crypto import encrypt
from .inbound import ALGORITHM_PARAM, forget


class InboundAuthIn(BaseModel):
    """The scheme, its algorithm (our own header only), and optionally a given secret.

    Without a secret one is generated; either way it is returned once and stored encrypted.
    Give one when the EHR side dictates it (e.g. a token its console generated).
    """

    auth: InboundAuth
    algorithm: SignatureAlgorithm = SignatureAlgorithm.HMAC_SHA256
    secret: str | None = Field(default=None, min_length=16, max_length=500)


class InboundAuthOut(BaseModel):
    connection_id: int
    auth: InboundAuth
    algorithm: SignatureAlgorithm
    secret: str  # shown once
    receiver_path: str


def set_inbound_auth(
    session: Session, *, connection: EHRConnection, data: InboundAuthIn, actor: audit.Actor
) -> InboundAuthOut:
    """Store the scheme and (new) secret for a connection's inbound webhooks."""
    secret = data.secret or secrets.token_urlsafe(32)
    connection.inbound_auth = data.auth.value
    connection.inbound_secret_encrypted = encrypt(secret)
    # No column for the algorithm: it lives with the connection's vendor parameters.
    params = dict(connection.vendor_params or {})
    params[ALGORITHM_PARAM] = data.algorithm.value
    connection.vendor_params = params
    connection.updated_at = utcnow()
    session.add(connection)
    forget(connection.id)
    audit.record(
        session,
        actor=actor,
        action="connection.inbound_auth",
        target_type="ehr_connection",
        target_id=connection.id,
        details={
            "auth": data.auth.value,
            "algorithm": data.algorithm.value,
            "secret_given": data.secret is not None,
        },
    )
    return InboundAuthOut(
        connection_id=connection.id,
        auth=data.auth,
        algorithm=data.algorithm,
        secret=secret,
        receiver_path=f"/api/webhooks/inbound/{connection.id}",
    )
