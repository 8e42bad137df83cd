"""Who is using the dashboard: the role check every page and handler goes through.

The session is the API's one cookie (`api.deps.SESSION_COOKIE`), HttpOnly and SameSite=Strict:
the sign-in page and the sign-out button post HTML forms to `/api/auth/login` and `/logout`,
whose answers set and delete it, so no script of the page ever holds it. The browser sends
it with the websocket's handshake; Reflex keeps that request's headers on the state
(`router.headers.cookie`, backend only: it never serializes the cookie header to the
browser). No state var holds the token. The server resolves it again on every protected
load and every mutating event, so a revoked or expired session stops at once.

A handler says which role it needs with `@requires(role)` or `@reads(role)`, and that
decorator enforces it: it resolves the session before the handler's own code runs, answers
a refused caller itself (the sign-in redirect, or a toast naming the role) and hands the
handler who called through `acting()`. The caller is held in a context variable for the
handler's own code only, never on the state (states are serialized, to Redis in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar, cast
from urllib.parse import quote

import reflex as rx
from opentelemetry import trace
from starlette.requests import cookie_parser

from ... import telemetry
from ...api.auth import SIGN_IN_PAGE
from ...api.deps import SESSION_COOKIE
from ...db import session_scope
from ...models import Role
from ...services import auth, labels
from ...services.auth import AuthError, PermissionDenied, Principal

SIGN_IN_ROUTE = SIGN_IN_PAGE

Handler = TypeVar("Handler", bound=Callable[..., Any])
T = TypeVar("T")
# What a refused handler does to its own state first (e.g. forget the rows a signed-out
# user was shown); it gets the state, or a background handler's proxy, with the lock held.
OnRefusal = Callable[[Any], None]
_PERMISSION = "__hvs_permission__"
# Who called the handler running now: set by its decorator around the handler's own code.
# Reflex runs each event in a task of its own (a copy of the context), so it never leaks
# into another event.
_ACTING: ContextVar[Principal] = ContextVar("hvs_acting")


@dataclasses.dataclass(frozen=True)
class Permission:
    """What an event handler declares: the lowest role it serves, and whether it changes data."""

    role: Role
    changes: bool


def requires(role: Role, *, on_refusal: OnRefusal | None = None) -> Callable[[Handler], Handler]:
    """A handler that changes data, or opens a form that does: refused below `role`.

    Enforced: the session is resolved before the handler runs; a refused caller gets the
    sign-in redirect or the role toast, and the handler does not run (`on_refusal`, if
    given, does). Inside the handler `acting()` is who called. Write the decorator below
    `@rx.event`. tests/integration/ui/test_handler_permissions.py runs every handler of the
    app as nobody and as each role, fails when what it does disagrees with what it declares,
    and fails on a handler that declares nothing and is not listed there as UI-only.
    """
    return _enforce(Permission(role, changes=True), on_refusal)


def reads(
    role: Role = Role.VIEWER, *, on_refusal: OnRefusal | None = None
) -> Callable[[Handler], Handler]:
    """A handler that only reads (stored data stays as it was): refused below `role`.

    Enforced as `requires` is.
    """
    return _enforce(Permission(role, changes=False), on_refusal)


def permission_of(fn: Callable[..., Any]) -> Permission | None:
    """The declaration on a handler's function (`EventHandler.fn`), if any."""
    return getattr(fn, _PERMISSION, None)


def acting() -> Principal:
    """Who called the handler running now, as its `@requires`/`@reads` resolved them.

    Only inside the own code of such a handler (and what it awaits); a helper that can be
    reached otherwise (e.g. from the live watcher) checks with `principal_for` itself.
    """
    try:
        return _ACTING.get()
    except LookupError:
        raise RuntimeError("acting() outside a handler declared with @requires/@reads") from None


def _enforce(permission: Permission, on_refusal: OnRefusal | None) -> Callable[[Handler], Handler]:
    def wrap(fn: Handler) -> Handler:
        # Reflex tells coroutine handlers from async generators by the function it holds, so
        # the wrapper is of the same kind; functools.wraps keeps the name, the annotations
        # and (`__wrapped__`, which inspect.signature follows) the arguments Reflex maps.
        if inspect.isasyncgenfunction(fn):
            wrapper = _stream(fn, permission.role, on_refusal)
        elif inspect.iscoroutinefunction(fn):
            wrapper = _call(fn, permission.role, on_refusal)
        else:
            raise TypeError(
                f"{fn.__qualname__}: a role check awaits the session, so a "
                "handler declared with @requires/@reads must be async"
            )
        setattr(wrapper, _PERMISSION, permission)
        return cast(Handler, wrapper)

    return wrap


def _call(
    fn: Callable[..., Awaitable[Any]], role: Role, on_refusal: OnRefusal | None
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def handler(self: Any, *args: Any, **kwargs: Any) -> Any:
        principal, refusal = await _admit(self, handler, role, on_refusal)
        if principal is None:
            return refusal
        span = _click(self, fn, principal)
        try:
            return await _acting_as(principal, span, fn(self, *args, **kwargs))
        finally:
            span.end()

    return handler


def _stream(
    fn: Callable[..., AsyncIterator[Any]], role: Role, on_refusal: OnRefusal | None
) -> Callable[..., AsyncIterator[Any]]:
    @functools.wraps(fn)
    async def handler(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        principal, refusal = await _admit(self, handler, role, on_refusal)
        if principal is None:
            yield refusal
            return
        # Step by step: the caller is set while the handler's code runs, not while Reflex
        # sends what it yielded, and a generator closed elsewhere resets no variable there.
        span = _click(self, fn, principal)
        try:
            async with contextlib.aclosing(fn(self, *args, **kwargs)) as events:
                while True:
                    try:
                        event = await _acting_as(principal, span, anext(events))
                    except StopAsyncIteration:
                        return
                    yield event
        finally:
            span.end()

    return handler


def _click(state: Any, fn: Callable[..., Any], principal: Principal) -> trace.Span:
    """The span of one admitted event (a click, a form sent): where a dashboard trace
    starts, so a sync started here is one trace from the click to the EHR (telemetry)."""
    return telemetry.entry(f"ui {type(state).__name__}.{fn.__name__}", role=principal.role.value)


async def _acting_as(principal: Principal, span: trace.Span, step: Awaitable[T]) -> T:
    token = _ACTING.set(principal)
    try:
        with telemetry.within(span):
            return await step
    finally:
        _ACTING.reset(token)


async def _admit(
    state: Any, handler: Callable[..., Any], role: Role, on_refusal: OnRefusal | None
) -> tuple[Principal | None, rx.event.EventSpec | None]:
    """Check the caller. A background handler runs on an unlocked proxy of its state:
    reading the session (and `on_refusal`) needs the lock, as `async with self` takes it."""
    if getattr(handler, rx.event.BACKGROUND_TASK_MARKER, False):
        async with state:
            return await _check(state, role, on_refusal)
    return await _check(state, role, on_refusal)


async def _check(
    state: Any, role: Role, on_refusal: OnRefusal | None
) -> tuple[Principal | None, rx.event.EventSpec | None]:
    principal, refusal = await principal_for(state, role)
    if principal is None and on_refusal is not None:
        on_refusal(state)
    return principal, refusal


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
        """on_load of every protected page: `@reads` sends a visitor without a session to
        sign in (and sets `username` and `role` for the page)."""
        return None


def sign_in_redirect(state: rx.State) -> rx.event.EventSpec:
    """To the sign-in page, coming back to this page afterwards."""
    return rx.redirect(f"{SIGN_IN_ROUTE}?next={quote(state.router.url.path)}")


async def principal_for(
    state: rx.State, needed: Role = Role.VIEWER
) -> tuple[Principal | None, rx.event.EventSpec | None]:
    """(principal, None) or (None, what to send back): a redirect to sign in, or a toast
    saying which role is needed.

    What `@requires`/`@reads` run before a handler; called directly only where no such
    handler has just checked (the live watcher's periodic re-check of the session).
    """
    session = await state.get_state(SessionState)
    try:
        return await session._principal(needed), None
    except AuthError:
        return None, sign_in_redirect(state)
    except PermissionDenied as exc:
        return None, rx.toast.error(labels.sentence(str(exc)))
