"""Shared API dependencies: the database session and who is calling, with their role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlmodel import Session

from ..db import session_scope
from ..models import Role
from ..services.auth import (
    AuthError,
    PermissionDenied,
    Principal,
    principal_from_api_token,
    principal_from_session,
    require_role,
)

SESSION_COOKIE = "hv_session"


def get_session() -> Iterator[Session]:
    """One session per request; committed when the route returns, rolled back on error."""
    with session_scope() as session:
        yield session


# scope="function": commit before the response goes out, so a client that gets 201 can read
# what it wrote, and a failed commit is an error response rather than a silent loss.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def current_principal(request: Request, session: SessionDep) -> Principal | None:
    """The caller from `Authorization: Bearer <token>` or the dashboard session cookie."""
    header = request.headers.get("authorization", "")
    ip = client_ip(request)
    try:
        if header.lower().startswith("bearer "):
            return principal_from_api_token(session, header[7:].strip(), ip)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return principal_from_session(session, cookie, ip)
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    return None


MaybePrincipal = Annotated[Principal | None, Depends(current_principal)]


def require(role: Role):  # noqa: ANN201 (a FastAPI dependency factory)
    """A dependency that lets the call through only for `role` or higher."""

    def check(principal: MaybePrincipal) -> Principal:
        try:
            return require_role(principal, role)
        except AuthError as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        except PermissionDenied as exc:
            raise HTTPException(403, str(exc)) from None

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
