"""EHR connections: CRUD, signing keys, and the public JWKS EHRs fetch."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlmodel import select

from ..models import EHRConnection
from ..services import connections as service
from ..services.connections import ConnectionIn, ConnectionOut, ConnectionPatch, StepOut
from .deps import Admin, Operator, SessionDep, Viewer
from .strict import strict_body

router = APIRouter(prefix="/api/connections", tags=["connections"])


class KeyIn(BaseModel):
    alg: Literal["RS384", "ES384"] = "RS384"


def _get(session: SessionDep, connection_id: int) -> EHRConnection:
    row = session.get(EHRConnection, connection_id)
    if row is None:
        raise HTTPException(404, "no such connection")
    return row


# Request bodies with strict scalars (see api.strict): `true` is not an integer here.
ConnectionBody = strict_body(ConnectionIn)
ConnectionPatchBody = strict_body(ConnectionPatch)
KeyBody = strict_body(KeyIn)


def _unserved(exc: service.UnservedTypes) -> RequestValidationError:
    """422 on the field, as the body's own validation answers."""
    return RequestValidationError(
        [{"loc": ("body", "resource_types"), "msg": str(exc), "type": "value_error"}]
    )


@router.get("", response_model=list[ConnectionOut])
def list_connections(_viewer: Viewer, session: SessionDep) -> list[ConnectionOut]:
    """Every connection (secrets are never included)."""
    rows = session.exec(select(EHRConnection).order_by(EHRConnection.name))
    return [ConnectionOut.of(row) for row in rows]


@router.post("", response_model=ConnectionOut, status_code=201)
def create_connection(body: ConnectionBody, admin: Admin, session: SessionDep) -> ConnectionOut:
    """Add a connection; a client secret is encrypted before it is stored."""
    try:
        row = service.create_connection(session, data=body, actor=admin.actor)
    except service.DuplicateName as exc:
        raise HTTPException(409, str(exc)) from None
    except service.UnservedTypes as exc:
        raise _unserved(exc) from None
    return ConnectionOut.of(row)


@router.get("/{connection_id}", response_model=ConnectionOut)
def get_connection(connection_id: int, _viewer: Viewer, session: SessionDep) -> ConnectionOut:
    """One connection."""
    return ConnectionOut.of(_get(session, connection_id))


@router.patch("/{connection_id}", response_model=ConnectionOut)
def update_connection(
    connection_id: int, body: ConnectionPatchBody, admin: Admin, session: SessionDep
) -> ConnectionOut:
    """Change a connection; a new client secret replaces the stored one."""
    row = _get(session, connection_id)
    try:
        service.update_connection(session, row=row, patch=body, actor=admin.actor)
    except service.DuplicateName as exc:
        raise HTTPException(409, str(exc)) from None
    except service.UnservedTypes as exc:
        raise _unserved(exc) from None
    return ConnectionOut.of(row)


@router.delete("/{connection_id}", status_code=204)
def delete_connection(connection_id: int, admin: Admin, session: SessionDep) -> None:
    """Delete a connection and everything synced through it."""
    service.delete_connection(session, row=_get(session, connection_id), actor=admin.actor)


@router.post("/{connection_id}/keys", response_model=dict[str, Any])
def generate_key(connection_id: int, body: KeyBody, admin: Admin, session: SessionDep) -> dict:
    """Generate a new signing key pair; returns the public JWKS to register with the EHR."""
    row = _get(session, connection_id)
    return service.generate_signing_key(session, row=row, alg=body.alg, actor=admin.actor)


@router.get("/{connection_id}/jwks.json", response_model=dict[str, Any])
def jwks(connection_id: int, session: SessionDep) -> dict:
    """The connection's public keys, at the stable URL EHRs register (no sign-in: it's public)."""
    return service.public_jwks(_get(session, connection_id))


@router.post("/{connection_id}/test", response_model=list[StepOut])
def test_connection(connection_id: int, operator: Operator, session: SessionDep) -> list[StepOut]:
    """Try the connection: discovery, token, CapabilityStatement, one Patient search.

    At most 30 s whatever the EHR does; no database transaction waits on it.
    """
    _get(session, connection_id)
    session.commit()  # end this request's transaction before the EHR is asked anything
    try:
        return service.test_connection(connection_id, actor=operator.actor)
    except service.ConnectionMissing as exc:
        raise HTTPException(404, str(exc)) from None
