"""Who is using the dashboard: the role check every page and handler uses.

The session is the API's one cookie (`api.deps.SESSION_COOKIE`), HttpOnly and SameSite=Strict:
the sign-in page and the sign-out button post HTML forms to `/api/auth/login` and `/logout`,
whose answers set and delete it, so no script of the page ever holds it. The browser sends
it with the websocket's handshake; Reflex keeps that request's headers on the state
(`router.headers.cookie`, backend only: it never serializes the cookie header to the
browser). No state var holds the token. The server resolves it again on every protected
load and every mutating event, so a revoked or expired session stops at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import reflex as rx
from starlette.requests import cookie_parser

from ...api.auth import SIGN_IN_PAGE
from ...api.deps import SESSION_COOKIE
from ...db import session_scope
from ...models import Role
from ...services import auth, labels
from ...services.auth import AuthError, PermissionDenied, Principal

SIGN_IN_ROUTE = SIGN_IN_PAGE

Handler = TypeVar("Handler", bound=Callable[..., Any])
_PERMISSION = "__hvs_permission__"


@dataclasses.dataclass(frozen=True)
class Permission:
    """What an event handler declares: the lowest role it serves, and whether it changes data."""

    role: Role
    changes: bool


def _declare(permission: Permission) -> Callable[[Handler], Handler]:
    def mark(fn: Handler) -> Handler:
        setattr(fn, _PERMISSION, permission)
        return fn

    return mark


def requires(role: Role) -> Callable[[Handler], Handler]:
    """Declare a handler that changes data, or opens a form that does, as refused below `role`.

    Only a declaration: the handler itself calls `principal_for(self, role)` before anything
    else. tests/integration/ui/test_handler_permissions.py runs every handler of the app as
    nobody and as each role, fails when what it does disagrees with what it declares, and
    fails on a handler that declares nothing and is not listed there as UI-only.
    """
    return _declare(Permission(role, changes=True))


def reads(role: Role = Role.VIEWER) -> Callable[[Handler], Handler]:
    """Declare a handler that only reads (stored data stays as it was) and needs `role`."""
    return _declare(Permission(role, changes=False))


def permission_of(fn: Callable[..., Any]) -> Permission | None:
    """The declaration on a handler's function (`EventHandler.fn`), if any."""
    return getattr(fn, _PERMISSION, None)


def _resolve(token: str, ip: str | None) -> Principal:
    if not token:
        raise AuthError("sign in first")
    with session_scope() as db:
        return auth.principal_from_session(db, token, ip)


def session_token(cookie_header: str) -> str:
    """The session cookie's value in a Cookie header ("" without one), parsed as the API does."""
    return cookie_parser(cookie_header).get(SESSION_COOKIE, "")


class SessionState(rx.State):
    """The signed-in user as the pages see it (name and role only; never the token)."""

    username: str = ""
    role: str = ""

    @rx.var
    def signed_in(self) -> bool:
        return self.role != ""

    @rx.var
    def can_operate(self) -> bool:
        """Operators and admins start, cancel and resolve; viewers only look."""
        return self.role in (Role.OPERATOR.value, Role.ADMIN.value)

    @rx.var
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    def _client_ip(self) -> str | None:
        return self.router.session.client_ip or None

    async def _principal(self, needed: Role = Role.VIEWER) -> Principal:
        """Resolve the cookie now and check the role; raises AuthError or PermissionDenied.

        Private on purpose: Reflex registers every public method of a state as an event the
        browser may send.
        """
        try:
            token = session_token(self.router.headers.cookie)
            found = await asyncio.to_thread(_resolve, token, self._client_ip())
        except AuthError:
            self.username, self.role = "", ""
            raise
        self.username, self.role = found.username, found.role.value
        return auth.require_role(found, needed)

    @rx.event
    @reads(Role.VIEWER)
    async def guard(self) -> rx.event.EventSpec | None:
        """on_load of every protected page: send a visitor without a session to sign in."""
        try:
            await self._principal()
        except AuthError:
            return sign_in_redirect(self)
        return None


def sign_in_redirect(state: rx.State) -> rx.event.EventSpec:
    """To the sign-in page, coming back to this page afterwards."""
    return rx.redirect(f"{SIGN_IN_ROUTE}?next={quote(state.router.url.path)}")


async def principal_for(
    state: rx.State, needed: Role = Role.VIEWER
) -> tuple[Principal | None, rx.event.EventSpec | None]:
    """For any other state's handler: (principal, None) or (None, what to send back).

    Handlers that read or change data call this first and return the second item when the
    first is None: a redirect to sign in, or a toast saying which role is needed.
    """
    session = await state.get_state(SessionState)
    try:
        return await session._principal(needed), None
    except AuthError:
        return None, sign_in_redirect(state)
    except PermissionDenied as exc:
        return None, rx.toast.error(labels.sentence(str(exc)))
