"""Who is using the dashboard: sign-in, sign-out and the role check every page and handler uses.

The session token lives in a same-site cookie; the server resolves it again on every
protected load and every mutating event, so a revoked or expired session stops at once.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import reflex as rx

from ...db import session_scope
from ...models import Role
from ...services import auth
from ...services.auth import AuthError, PermissionDenied, Principal

SESSION_COOKIE = "hvs_session"
SIGN_IN_ROUTE = "/signin"


def _resolve(token: str, ip: str | None) -> Principal:
    if not token:
        raise AuthError("sign in first")
    with session_scope() as db:
        return auth.principal_from_session(db, token, ip)


class SessionState(rx.State):
    """The signed-in user as the pages see it (name and role only; never the token's hash)."""

    token: str = rx.Cookie(
        "", name=SESSION_COOKIE, path="/", max_age=8 * 3600, same_site="strict"
    )
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

    async def principal(self, needed: Role = Role.VIEWER) -> Principal:
        """Resolve the cookie now and check the role; raises AuthError or PermissionDenied."""
        try:
            found = await asyncio.to_thread(_resolve, self.token, self._client_ip())
        except AuthError:
            self.username, self.role = "", ""
            raise
        self.username, self.role = found.username, found.role.value
        return auth.require_role(found, needed)

    @rx.event
    async def guard(self) -> rx.event.EventSpec | None:
        """on_load of every protected page: send a visitor without a session to sign in."""
        try:
            await self.principal()
        except AuthError:
            return sign_in_redirect(self)
        return None

    @rx.event
    async def sign_out(self) -> rx.event.EventSpec:
        token = self.token
        if token:
            await asyncio.to_thread(_sign_out, token)
        self.token, self.username, self.role = "", "", ""
        return rx.redirect(SIGN_IN_ROUTE)


def sign_in_redirect(state: rx.State) -> rx.event.EventSpec:
    """To the sign-in page, coming back to this page afterwards."""
    return rx.redirect(f"{SIGN_IN_ROUTE}?next={quote(state.router.url.path)}")


def _sign_out(token: str) -> None:
    with session_scope() as db:
        auth.sign_out(db, token)


async def principal_for(
    state: rx.State, needed: Role = Role.VIEWER
) -> tuple[Principal | None, rx.event.EventSpec | None]:
    """For any other state's handler: (principal, None) or (None, what to send back).

    Handlers that read or change data call this first and return the second item when the
    first is None: a redirect to sign in, or a toast saying which role is needed.
    """
    session = await state.get_state(SessionState)
    try:
        return await session.principal(needed), None
    except AuthError:
        return None, sign_in_redirect(state)
    except PermissionDenied as exc:
        return None, rx.toast.error(str(exc))
