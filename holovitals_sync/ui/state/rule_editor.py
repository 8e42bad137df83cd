"""What the two rule editors of a connection share: load, save, and a run on a sample.

The transformation rules (`rules.py`) and the custom validation rules (`validation_rules.py`)
each list the open connection's rules (`RuleListActions`), save a form of rule fields and run
the rules on a pasted resource. That flow is written once here; each editor keeps its
service calls, its form and its words, through the private hooks below.

A Reflex mixin is no state of its own: each editor gets copies of its vars and handlers, so
`RulesState.save_rule` and `ValidationRulesState.save_rule` stay two handlers, each with its
role check (tests/integration/ui/test_handler_permissions.py lists them per editor). Every
method whose name does not start with "_" becomes a handler the browser may call, so the
hooks are private.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

import reflex as rx
from reflex.event import EventSpec

from ...models import Role
from ...services.audit import Actor
from ..views.rule_forms import parse_sample
from .rule_list import RuleListActions
from .session import acting, reads, requires

Event = EventSpec | list[EventSpec] | None


class RuleEditor(RuleListActions, mixin=True):
    """The open connection's rules, their form's save and a sample they run on."""

    sample: str = ""  # each editor starts from an example resource of its own
    sample_error: str = ""
    sample_done: bool = False  # the result shown belongs to the sample last run
    sample_lines: list[dict[str, str]] = []  # one per change or issue, as the editor words it
    _SAVED: ClassVar[str]  # the toast once the form is saved

    # -- what each editor does its own way ----------------------------------------------

    def _saving(self, actor: Actor) -> Callable[[], dict[str, str]]:
        """The save of the form as typed, to run in a thread: messages by field, {} if saved.

        The values are copied when this is called, on the event loop, not in the thread."""
        raise NotImplementedError

    def _show_saved(self, errors: dict[str, str]) -> None:
        """Show the save's messages under their fields; none: the form closes."""
        raise NotImplementedError

    def _leave_connection(self) -> None:
        """Reset what belonged to the connection left (the sample's result is reset already)."""

    # -- loading ------------------------------------------------------------------------

    def _forget(self) -> None:
        """Refused (signed out): the rules shown do not stay in the tab's state."""
        self.rules = []

    @rx.event
    @reads(on_refusal=_forget)
    async def load_for(self, connection_id: int) -> Event:
        if connection_id != self.connection_id:
            self.sample_done, self.sample_lines, self.sample_error = False, [], ""
            self._leave_connection()
        self.connection_id = connection_id
        await self._reload()
        return None

    # -- saving the form ----------------------------------------------------------------

    @rx.event
    @requires(Role.ADMIN)
    async def save_rule(self) -> Event:
        if not self.connection_id:
            return None
        errors = await asyncio.to_thread(self._saving(acting().actor))
        self._show_saved(errors)
        if errors:
            return None
        await self._reload()
        return rx.toast.success(self._SAVED)

    # -- the sample -------------------------------------------------------------------

    @rx.event
    def set_sample(self, value: str) -> None:
        self.sample, self.sample_error = value[:200_000], ""

    def _sample_to_run(self) -> dict[str, Any] | None:
        """The pasted resource; None without a connection, or (said under the sample, and
        the last result hidden) when the text is not one resource."""
        if not self.connection_id:
            return None
        sample, problem = parse_sample(self.sample)
        if sample is None:
            self.sample_error, self.sample_done = problem, False
        return sample

    def _show_lines(self, lines: list[dict[str, str]]) -> None:
        """The run's result, for the sample as it is now."""
        self.sample_lines, self.sample_done, self.sample_error = lines, True, ""
