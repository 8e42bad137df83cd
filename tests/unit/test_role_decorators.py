"""`@requires`/`@reads` enforce the role they declare (#24, point 3).

A stand-in state (no Reflex app, no database): `get_state` hands back a session whose caller
is fixed, so `principal_for` and the decorator's wrapper run as in the app. Each handler's
body records that it ran and who `acting()` said called; a refused caller must get the
sign-in redirect or the role toast and the body must not run.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from types import SimpleNamespace
from typing import Any

import pytest
import reflex as rx
from reflex_base.event import EventHandler, EventSpec

from holovitals_sync.models import ActorKind, Role
from holovitals_sync.services import auth
from holovitals_sync.services.auth import Principal
from holovitals_sync.ui.state.session import acting, permission_of, reads, requires


def _user(role: Role) -> Principal:
    return Principal(user_id=1, username=f"{role.value}-1", role=role, via=ActorKind.USER)


class Session:
    """What `SessionState._principal` does, for a fixed caller (None: no session)."""

    def __init__(self, caller: Principal | None) -> None:
        self.caller = caller

    async def _principal(self, needed: Role = Role.VIEWER) -> Principal:
        return auth.require_role(self.caller, needed)


class Tab:
    """A state as a handler sees it: `get_state`, `router`, and `async with` (background)."""

    def __init__(self, caller: Principal | None) -> None:
        self.session = Session(caller)
        self.router = SimpleNamespace(url=SimpleNamespace(path="/jobs"))
        self.ran: list[str] = []
        self.rows = ["a row"]
        self.locked = False
        self.locked_during_check: bool | None = None

    async def get_state(self, cls: type) -> Session:
        self.locked_during_check = self.locked
        return self.session

    async def __aenter__(self) -> Tab:
        self.locked = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.locked = False

    def _forget(self) -> None:
        self.rows = []

    @requires(Role.OPERATOR)
    async def change(self, job_id: int, note: str = "") -> str:
        self.ran.append(acting().username)
        await asyncio.sleep(0)
        return f"changed {job_id}"

    @reads(on_refusal=_forget)
    async def load(self) -> None:
        self.ran.append(acting().username)

    @requires(Role.ADMIN)
    async def steps(self):  # noqa: ANN201 - an async generator of events
        self.ran.append(acting().username)
        yield "first"
        await asyncio.sleep(0)
        self.ran.append(acting().username)  # resumed after Reflex sent the first
        yield "second"

    @rx.event(background=True)
    @reads()
    async def watch(self) -> str:
        self.ran.append(acting().username)
        return "watching"


def _shown(event: Any) -> str:
    assert isinstance(event, EventSpec), event
    value = event.args[0][1]
    if event.handler.fn.__qualname__ == "_redirect":
        return f"redirect:{value._var_value}"
    return f"script:{value._js_expr}"


def _acting_now() -> str | None:
    try:
        return acting().username
    except RuntimeError:
        return None


@pytest.mark.parametrize("caller", [None, Role.VIEWER])
def test_a_refused_caller_gets_the_refusal_and_the_body_does_not_run(caller: Role | None):
    tab = Tab(_user(caller) if caller else None)
    refusal = asyncio.run(tab.change(7))
    if caller is None:
        assert _shown(refusal) == "redirect:/signin?next=/jobs"
    else:
        assert "this needs the operator role" in _shown(refusal).lower()
    assert tab.ran == []


@pytest.mark.parametrize("caller", [Role.OPERATOR, Role.ADMIN])
def test_an_allowed_caller_runs_the_body_as_itself(caller: Role):
    tab = Tab(_user(caller))
    assert asyncio.run(tab.change(7, note="n")) == "changed 7"
    assert tab.ran == [f"{caller.value}-1"]
    assert _acting_now() is None  # nothing left behind once the handler is done


def test_on_refusal_runs_only_for_a_refused_caller():
    nobody, viewer = Tab(None), Tab(_user(Role.VIEWER))
    assert _shown(asyncio.run(nobody.load())).startswith("redirect:/signin")
    assert nobody.rows == [] and nobody.ran == []
    assert asyncio.run(viewer.load()) is None
    assert viewer.rows == ["a row"] and viewer.ran == ["viewer-1"]


async def _drain(events: Any) -> list[tuple[Any, str | None]]:
    """Iterate as Reflex does, noting who `acting()` is while Reflex holds each event."""
    return [(event, _acting_now()) async for event in events]


def test_a_generator_handler_is_refused_by_one_yield_and_acts_across_its_yields():
    operator = Tab(_user(Role.OPERATOR))
    [(refusal, _)] = asyncio.run(_drain(operator.steps()))
    assert "this needs the admin role" in _shown(refusal).lower()
    assert operator.ran == []

    admin = Tab(_user(Role.ADMIN))
    assert asyncio.run(_drain(admin.steps())) == [("first", None), ("second", None)]
    assert admin.ran == ["admin-1", "admin-1"]


def test_a_background_handler_checks_under_the_lock():
    refused, allowed = Tab(None), Tab(_user(Role.VIEWER))
    assert _shown(asyncio.run(refused.watch())).startswith("redirect:/signin")
    assert refused.ran == [] and refused.locked_during_check is True
    assert asyncio.run(allowed.watch()) == "watching"
    assert allowed.ran == ["viewer-1"] and allowed.locked_during_check is True
    assert not allowed.locked  # released before the handler runs: it takes the lock itself


def test_reflex_sees_the_handler_as_written():
    """Same kind of function, arguments and hints: Reflex maps event payloads by them."""
    handler = EventHandler(fn=Tab.change)
    assert inspect.iscoroutinefunction(Tab.change)
    assert inspect.isasyncgenfunction(Tab.steps)
    assert list(handler.get_parameters()) == ["self", "job_id", "note"]
    assert typing.get_type_hints(Tab.change)["job_id"] is int
    assert Tab.change.__qualname__ == "Tab.change"
    assert permission_of(Tab.change) is not None and permission_of(Tab.change).changes
    assert permission_of(Tab.load) is not None and not permission_of(Tab.load).changes
    assert getattr(Tab.watch, rx.event.BACKGROUND_TASK_MARKER, False)


def test_a_plain_function_cannot_be_declared():
    """The check awaits the session: a sync handler would have to skip it."""
    with pytest.raises(TypeError, match="must be async"):

        @reads()
        def look(self: Any) -> None:
            return None
