"""Sign-in, sign-out and API tokens.

The session is one cookie (`deps.SESSION_COOKIE`): HttpOnly and SameSite=Strict, so no script
of any page reads it; the API reads it from requests, the dashboard from its websocket's
handshake. Scripts sign in with JSON. The dashboard's sign-in page and sign-out button post
real HTML forms here (a browser only keeps an HttpOnly cookie an HTTP answer sets), and a
form is answered with a 303 to a dashboard page instead of JSON.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from sqlmodel import select

from ..config import get_settings
from ..db import session_scope
from ..models import ApiToken, Role
from ..models.types import utcnow
from ..services import auth, login_guard
from .deps import SESSION_COOKIE, SessionDep, Viewer, client_ip
from .errors import error_body
from .strict import strict_body

router = APIRouter(prefix="/api/auth", tags=["auth"])

SIGN_IN_PAGE = "/signin"  # the dashboard's sign-in page
FORM = "application/x-www-form-urlencoded"
_FORM_LIMIT = 8192  # bytes: a username, a password and a path
# A path on the dashboard: `//host`, `/\host` or `https://host` would take the user elsewhere.
_LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]{0,2000}")


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1000)


class Me(BaseModel):
    username: str
    role: Role
    via: str


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role = Field(
        default=Role.VIEWER,
        description=(
            "What the token may do, at most the caller's own role. Defaults to viewer "
            "(read-only): scripts that start syncs or resolve conflicts need operator."
        ),
    )
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


def _set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, path="/", httponly=True, samesite="strict",
        secure=get_settings().environment == "production",
        max_age=int(auth.SESSION_LIFETIME.total_seconds()),
    )  # fmt: skip


def _delete_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=get_settings().environment == "production")  # fmt: skip


def local_path(target: str | None) -> str:
    """Where a form may send the user afterwards: a path on the dashboard, else `/`."""
    if not target or not _LOCAL_PATH.fullmatch(target) or target.startswith(SIGN_IN_PAGE):
        return "/"
    return target


def dashboard_origin(request: Request) -> str | None:
    """The dashboard page's origin that sent a form (its Origin, else its Referer) when it is
    one of `Settings.allowed_origins`; the first of them when neither header is there; None
    when a page elsewhere sent it."""
    allowed = get_settings().allowed_origins
    origin = request.headers.get("origin")
    if origin is None and (referer := request.headers.get("referer")):
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin is None:
        return allowed[0]
    origin = origin.rstrip("/")
    return origin if origin in allowed else None


async def _form_fields(request: Request) -> dict[str, str]:
    """The form's fields; none when it is larger than a sign-in form can be."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _FORM_LIMIT:
            return {}
    try:
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True,
                              max_num_fields=8))  # fmt: skip
    except ValueError:
        return {}


def _answers_forms(answer_form: Callable[[Request], Awaitable[Response]]) -> type[APIRoute]:
    """A route class: the documented JSON operation, and a browser's HTML form post to the
    same path answered by `answer_form` (FastAPI would refuse a form for a JSON body)."""

    class FormOrJson(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            answer_json = super().get_route_handler()

            async def handler(request: Request) -> Response:
                media_type = request.headers.get("content-type", "").split(";")[0]
                if media_type.strip().lower() == FORM:
                    return await answer_form(request)
                return await answer_json(request)

            return handler

    return FormOrJson


def login(body: LoginBody, request: Request, response: Response, session: SessionDep) -> Me:
    """Sign in with a password; sets the session cookie (HttpOnly, SameSite=Strict).

    Scripts send JSON and get 200. The dashboard's sign-in page posts an HTML form
    (`username`, `password`, `next`): it is answered 303 to `next` on the dashboard, or back
    to the sign-in page with `error` (`refused`, `too_many`, `busy`, `missing`).
    """
    try:
        token, user = auth.sign_in(
            session, username=body.username, password=body.password, ip=client_ip(request)
        )
    except auth.AuthError as exc:
        raise HTTPException(401, str(exc)) from None
    except login_guard.TooManyAttempts as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    _set_session_cookie(response, token)
    return Me(username=user.username, role=user.role, via="session")


def _sign_in(username: str, password: str, ip: str | None) -> str:
    with session_scope() as session:
        token, _user = auth.sign_in(session, username=username, password=password, ip=ip)
    return token


async def _login_form(request: Request) -> Response:
    """The sign-in page's form: 303 to the page asked for, or back to the sign-in page with
    an error code (never the username or password in a URL)."""
    origin = dashboard_origin(request)
    if origin is None:  # a page elsewhere signing the browser in to an account of its choice
        return JSONResponse(error_body(403, "sign in from the dashboard's own page"), 403)
    form = await _form_fields(request)
    target = local_path(form.get("next"))
    username, password = form.get("username", "").strip(), form.get("password", "")
    back: dict[str, str] = {}
    if not username or not password:
        back["error"] = "missing"
    elif len(username) > 150 or len(password) > 1000:  # the JSON body's limits
        back["error"] = "refused"
    else:
        try:
            token = await run_in_threadpool(_sign_in, username, password, client_ip(request))
        except auth.AuthError:
            back["error"] = "refused"
        except login_guard.TooManyAttempts as exc:
            # The hashing slots' refusal says so; the attempt limits give a wait.
            busy = "busy" in str(exc)
            back = (
                {"error": "busy"} if busy else {"error": "too_many", "retry": str(exc.retry_after)}
            )
        else:
            response = RedirectResponse(f"{origin}{target}", status_code=303)
            _set_session_cookie(response, token)
            return response
    query = urlencode({**back, "next": target})
    return RedirectResponse(f"{origin}{SIGN_IN_PAGE}?{query}", status_code=303)


router.add_api_route(
    "/login", login, methods=["POST"], response_model=Me,
    route_class_override=_answers_forms(_login_form),
    responses={303: {"description": "a form post: to the page asked for (signed in) or back "
                                    "to the sign-in page with an error code"}},
)  # fmt: skip


def logout(request: Request, response: Response, session: SessionDep) -> None:
    """End the dashboard session and delete its cookie (a form post: 303 to the sign-in page)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        auth.sign_out(session, cookie)
    _delete_session_cookie(response)


def _sign_out(token: str) -> None:
    with session_scope() as session:
        auth.sign_out(session, token)


async def _logout_form(request: Request) -> Response:
    # With the cookie, a page elsewhere is refused before this (origin_check.OriginCheck).
    origin = dashboard_origin(request) or get_settings().allowed_origins[0]
    if cookie := request.cookies.get(SESSION_COOKIE):
        await run_in_threadpool(_sign_out, cookie)
    response = RedirectResponse(f"{origin}{SIGN_IN_PAGE}", status_code=303)
    _delete_session_cookie(response)
    return response


router.add_api_route(
    "/logout", logout, methods=["POST"], status_code=204,
    route_class_override=_answers_forms(_logout_form),
    responses={303: {"description": "a form post: to the sign-in page"}},
)  # fmt: skip


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
