"""State of the Conflicts tab and of the conflict resolution modal.

The list is paged on the server (keyset cursor) and filtered by status, severity,
connection and resource type. The modal checks a resolution with the service's own rules
before sending it, so a bad manual value or a missing reason is reported at its field and
nothing is stored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from ...db import session_scope
from ...models import ConflictStatus, ResolutionStrategy, Role, Severity
from ...services import conflicts as service
from ...services import labels
from ...services.auth import Principal
from ...services.conflicts import ConflictFilter
from ..views import conflicts as cv
from ..views import webhooks as wh
from ..views.paging import turn
from .session import acting, reads, requires

PAGE_SIZE = 15
ALL = "all"
STATUSES = [s.value for s in ConflictStatus] + [ALL]
SEVERITIES = [ALL] + [s.value for s in Severity]
STRATEGIES = [s.value for s in ResolutionStrategy]


def _filters(status: str, severity: str, connection: str, resource_type: str) -> ConflictFilter:
    return ConflictFilter(
        status=ConflictStatus(status) if status in STATUSES[:-1] else None,
        severity=Severity(severity) if severity in SEVERITIES[1:] else None,
        connection_id=int(connection) if connection.isdecimal() else None,
        resource_type=resource_type if resource_type != ALL else None,
    )


Query = tuple[ConflictFilter, int]  # the filters and cursor of the page on screen
Found = tuple[cv.Page, list[dict[str, str]], list[str]]  # the page, connections, types


def read_page(query: Query) -> Found:
    """One page of conflicts and the filters' choices (live.py re-reads it too)."""
    filters, after = query
    with session_scope() as session:
        page = cv.conflicts_page(session, filters=filters, after_id=after or None, limit=PAGE_SIZE)
        return page, wh.connection_choices(session), cv.resource_types(session)


def _view(conflict_id: int) -> dict[str, Any] | None:
    with session_scope() as session:
        return cv.conflict_view(session, conflict_id)


def _resolve(
    principal: Principal,
    conflict_id: int,
    strategy: ResolutionStrategy,
    reason: str,
    choices: dict[str, str] | None,
    values: dict[str, Any] | None,
) -> tuple[str | None, bool]:
    """Resolve through the service: (what went wrong, no values; or None) and whether a
    write to the EHR was queued (the conflicts queue does it; the row follows it live)."""
    try:
        with session_scope() as session:
            conflict = service.resolve(
                session,
                conflict_id=conflict_id,
                strategy=strategy,
                reason=reason,
                actor=principal.actor,
                choices=choices,
                values=values,
            )
            queued = ((conflict.resolution or {}).get("write_back") or {}).get("status")
    except service.ConflictNotFound:
        return "that conflict no longer exists", False
    except service.ResolutionError as exc:  # NotOpen too: someone else was quicker
        return str(exc), False
    return None, queued == "queued"


def _check(
    conflict_id: int,
    strategy: ResolutionStrategy,
    choices: dict[str, str] | None,
    values: dict[str, Any] | None,
) -> str | None:
    try:
        with session_scope() as session:
            cv.check_resolution(
                session, conflict_id=conflict_id, strategy=strategy, choices=choices, values=values
            )
    except service.ResolutionError as exc:
        return str(exc)
    return None


class ConflictsState(rx.State):
    """One page of conflicts and the filters that chose it."""

    rows: list[dict[str, str]] = []
    status: str = ConflictStatus.OPEN.value
    severity: str = ALL
    connection: str = ALL
    resource_type: str = ALL
    after: int = 0
    next_cursor: int = 0
    back: list[int] = []
    connections: list[dict[str, str]] = []
    resource_types: list[str] = [ALL]

    # What live.py calls (following.FollowedList). The leading "_" keeps them from the
    # browser: Reflex makes every other method an event handler.

    def _query(self) -> Query:
        """The filters and cursor of the page on screen."""
        return _filters(self.status, self.severity, self.connection, self.resource_type), self.after

    def _show(self, found: Found) -> None:
        page, self.connections, types = found
        self.rows, self.next_cursor = page.rows, page.next_cursor or 0
        self.resource_types = [ALL, *types]

    async def _load(self) -> rx.event.EventSpec | None:
        self._show(await asyncio.to_thread(read_page, self._query()))
        return None

    def _forget(self) -> None:
        """Refused (signed out): the conflicts shown do not stay in the tab's state."""
        self.rows = []

    @rx.event
    @reads(on_refusal=_forget)
    async def load(self) -> rx.event.EventSpec | None:
        return await self._load()

    @rx.event
    @reads(on_refusal=_forget)
    async def set_filter(self, key: str, value: str) -> rx.event.EventSpec | None:
        if key in ("status", "severity", "connection", "resource_type"):
            setattr(self, key, value)
        self.after, self.back = 0, []
        return await self._load()

    @rx.event
    @reads(on_refusal=_forget)
    async def page(self, forward: bool) -> rx.event.EventSpec | None:
        self.after, self.back = turn(self.after, self.back, self.next_cursor, forward)
        return await self._load()


class ConflictModalState(rx.State):
    """The resolution modal: the conflict side by side and the operator's decision."""

    open: bool = False
    conflict_id: int = 0
    summary: dict[str, str] = {}
    elements: list[dict[str, str]] = []
    record: list[dict[str, str]] = []
    strategy: str = ResolutionStrategy.USE_REMOTE.value
    choices: dict[str, str] = {}  # merge: path -> "local" | "remote"
    manual: str = ""
    manual_error: str = ""
    reason: str = ""
    reason_error: str = ""
    form_error: str = ""
    busy: bool = False

    @rx.event
    @reads()
    async def open_conflict(self, conflict_id: str) -> rx.event.EventSpec | None:
        view = await asyncio.to_thread(_view, int(conflict_id))
        if view is None:
            return rx.toast.error("That conflict no longer exists.")
        self.conflict_id, self.summary = int(conflict_id), view["summary"]
        self.elements, self.record = view["elements"], view["record"]
        self.choices = {e["path"]: "local" for e in self.elements}
        self.manual, self.reason = view["manual_template"], ""
        self.strategy = ResolutionStrategy.USE_REMOTE.value
        self.manual_error = self.reason_error = self.form_error = ""
        self.open = True
        return None

    @rx.event
    def set_open(self, value: bool) -> None:
        self.open = value

    @rx.event
    def set_strategy(self, value: str) -> None:
        if value in STRATEGIES:
            self.strategy, self.form_error, self.manual_error = value, "", ""

    @rx.event
    def set_choice(self, path: str, side: str) -> None:
        if path in self.choices and side in ("local", "remote"):
            self.choices = {**self.choices, path: side}

    @rx.event
    def set_manual(self, value: str) -> None:
        self.manual, self.manual_error = value, ""

    @rx.event
    def set_reason(self, value: str) -> None:
        self.reason, self.reason_error = value, ""

    def _decision(self) -> tuple[dict[str, str] | None, dict[str, Any] | None]:
        """Choices or values for the chosen strategy; sets `manual_error` on bad JSON."""
        strategy = ResolutionStrategy(self.strategy)
        if strategy is ResolutionStrategy.MERGE:
            return dict(self.choices), None
        if strategy is ResolutionStrategy.MANUAL:
            try:
                return None, cv.parse_manual(self.manual)
            except service.ResolutionError as exc:
                self.manual_error = str(exc)
        return None, None

    @rx.event
    @requires(Role.OPERATOR)
    async def submit(self):  # noqa: ANN201 (yields UI updates)
        self.reason_error = "" if self.reason.strip() else "a reason is required"
        self.manual_error, self.form_error = "", ""
        choices, values = self._decision()
        if self.reason_error or self.manual_error:
            return
        strategy = ResolutionStrategy(self.strategy)
        problem = await asyncio.to_thread(_check, self.conflict_id, strategy, choices, values)
        if problem:
            if strategy is ResolutionStrategy.MANUAL:
                self.manual_error = problem
            else:
                self.form_error = problem
            return
        self.busy = True
        yield
        problem, queued = await asyncio.to_thread(
            _resolve, acting(), self.conflict_id, strategy, self.reason.strip(), choices, values
        )
        self.busy = False
        if problem:
            self.form_error = labels.sentence(problem)
            return
        self.open = False
        yield ConflictsState.load
        writing = (
            " Writing it to the EHR: the resolved list shows when it is done." if queued else ""
        )
        yield rx.toast.success(
            f"Conflict {self.conflict_id} resolved: {labels.STRATEGIES[strategy.value]}.{writing}"
        )
