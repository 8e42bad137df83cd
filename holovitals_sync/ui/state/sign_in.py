"""The sign-in form's state: checks the password through the auth service, sets the cookie."""

from __future__ import annotations

import asyncio

import reflex as rx

from ...db import session_scope
from ...services import auth
from ...services.auth import AuthError
from ...services.login_guard import TooManyAttempts
from .session import SessionState


def _sign_in(username: str, password: str, ip: str | None) -> tuple[str, str, str]:
    with session_scope() as db:
        token, user = auth.sign_in(db, username=username, password=password, ip=ip)
        return token, user.username, user.role.value


class SignInState(rx.State):
    error: str = ""
    busy: bool = False

    @rx.event
    async def submit(self, form: dict[str, str]):  # noqa: ANN201 (yields UI updates)
        self.busy, self.error = True, ""
        yield
        username = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        try:
            if not username or not password:
                raise AuthError("enter your username and password")
            token, name, role = await asyncio.to_thread(
                _sign_in, username, password, self.router.session.client_ip or None
            )
        except (AuthError, TooManyAttempts) as exc:
            self.busy, self.error = False, str(exc)
            return
        session = await self.get_state(SessionState)
        session.token, session.username, session.role = token, name, role
        self.busy = False
        target = self.router.url.query_parameters.get("next", "/")
        yield rx.redirect(_local_path(str(target)))


def _local_path(target: str) -> str:
    """Only a path on this site: `//host` or `https://...` would send the user elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"
