"""Dashboard tabs without a browser: a state tree per tab, as Reflex builds one per websocket.

A tab here is a fresh root state whose router carries the handshake of a signed-in browser
(the `hv_session` cookie), with its page's on_load handlers called on the real substates and
its live watcher (`LiveState.watch`) running as a task on the test's event loop. Background
handlers use `async with self`, which in the app is Reflex's StateProxy; `Unlocked` stands
in for it (each tab is its own tree, so there is nothing to lock).
"""

from __future__ import annotations

import asyncio
import inspect
import types
from typing import Any, TypeVar

from reflex.state import BaseState, State
from reflex_base.constants import RouteVar

import holovitals_sync.holovitals_sync  # noqa: F401 - registers every page and State of the app
from holovitals_sync.ui.state.live import LiveState

S = TypeVar("S", bound=BaseState)


class Unlocked:
    """`async with self` for a background handler outside Reflex's state manager.

    The state's own methods are bound to this stand-in, so their `async with self` lands here;
    everything else (fields, `get_state`, `router`) is the real state's.
    """

    def __init__(self, state: BaseState) -> None:
        object.__setattr__(self, "_state", state)

    def __getattr__(self, name: str) -> Any:
        own = type(self._state).__dict__.get(name)
        if inspect.isfunction(own):
            return types.MethodType(own, self)
        return getattr(self._state, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._state, name, value)

    async def __aenter__(self) -> Unlocked:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class Tab:
    """One open dashboard tab of a signed-in user."""

    def __init__(self, session_token: str) -> None:
        self.root = State(_reflex_internal_init=True)
        handshake = {
            RouteVar.HEADERS: {"host": "localhost:8000", "cookie": f"hv_session={session_token}"},
            RouteVar.CLIENT_IP: "127.0.0.1",
        }
        self.root.router_data = self.root._update_router_vars(handshake, {})
        self.watcher: asyncio.Task[Any] | None = None

    def state(self, cls: type[S]) -> S:
        return self.root.get_substate(cls.get_full_name().split("."))  # type: ignore[return-value]

    async def call(self, cls: type[BaseState], handler: str, *args: Any) -> Any:
        """A plain event handler, as the page calls it."""
        result = cls.event_handlers[handler].fn(self.state(cls), *args)
        return await result if inspect.isawaitable(result) else result

    def watch(self, handler: str = "watch") -> None:
        """Start the live watcher the page's on_load starts."""
        fn = LiveState.event_handlers[handler].fn
        self.watcher = asyncio.ensure_future(fn(Unlocked(self.state(LiveState))))

    @property
    def live(self) -> bool:
        return self.state(LiveState).live

    async def close(self) -> None:
        """The tab closes: Reflex cancels its background task."""
        if self.watcher is not None:
            self.watcher.cancel()
            await asyncio.gather(self.watcher, return_exceptions=True)
            if not self.watcher.cancelled() and self.watcher.exception() is not None:
                raise self.watcher.exception()  # type: ignore[misc]
