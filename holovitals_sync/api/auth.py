"""Sign-in, sign-out and API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlmodel import select

from ..config import get_settings
from ..models import ApiToken, Role
from ..models.types import utcnow
from ..services import auth, login_guard
from .deps import SESSION_COOKIE, SessionDep, Viewer, client_ip
from .strict import strict_body

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1000)


class Me(BaseModel):
    username: str
    role: Role
    via: str


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role = Field(default=Role.VIEWER, description=(
        "What the token may do, at most the caller's own role. Defaults to viewer "
        "(read-only): scripts that start syncs or resolve conflicts need operator."))
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once; store it now.")


# Request bodies with strict scalars (see api.strict): `true` is not an integer here.
LoginBody = strict_body(LoginIn)
TokenBody = strict_body(TokenIn)


@router.post("/login", response_model=Me)
def login(body: LoginBody, request: Request, response: Response, session: SessionDep) -> Me:
    """Sign in with a password; sets the session cookie."""
    try:
        token, user = auth.sign_in(
            session, username=body.username, password=body.password, ip=client_ip(request)
        )
    except auth.AuthError as exc:
        raise HTTPException(401, str(exc)) from None
    except login_guard.TooManyAttempts as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}
                            ) from None
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict",
        secure=get_settings().environment == "production",
        max_age=int(auth.SESSION_LIFETIME.total_seconds()),
    )  # fmt: skip
    return Me(username=user.username, role=user.role, via="session")


@router.post("/logout", status_code=204)
def logout(request: Request, response: Response, session: SessionDep) -> None:
    """End the dashboard session."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        auth.sign_out(session, cookie)
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me", response_model=Me)
def me(principal: Viewer) -> Me:
    """Who the caller is."""
    return Me(username=principal.username, role=principal.role, via=principal.via.value)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(principal: Viewer, session: SessionDep) -> list[ApiToken]:
    """The caller's own API tokens (never the token values)."""
    query = select(ApiToken).where(ApiToken.user_id == principal.user_id).order_by(ApiToken.id)
    return list(session.exec(query))


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenBody, principal: Viewer, session: SessionDep) -> TokenCreated:
    """Create an API token with a role no higher than the caller's; shown once."""
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    try:
        token, row = auth.create_api_token(
            session, owner=principal, name=body.name, role=body.role, expires_at=expires
        )
    except auth.PermissionDenied as exc:
        raise HTTPException(403, str(exc)) from None
    public = TokenOut.model_validate(row, from_attributes=True)
    return TokenCreated(token=token, **public.model_dump())


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, principal: Viewer, session: SessionDep) -> None:
    """Revoke one of the caller's tokens (admins may revoke any)."""
    try:
        auth.revoke_api_token(session, actor=principal, token_id=token_id)
    except LookupError:
        raise HTTPException(404, "no such token") from None
