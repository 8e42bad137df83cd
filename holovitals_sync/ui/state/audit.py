"""Audit page state: filters, one page of entries (newest first) and the chain's verdict.

Reading the log needs the operator role and verifying it the admin role, as in `api/audit.py`.
"""

from __future__ import annotations

import asyncio
from datetime import date

import reflex as rx

from ...db import session_scope
from ...models import Role
from ..views import audit_log
from .session import acting, reads

PER_PAGE = 25
FILTERS = ("actor", "action", "target", "since", "until", "text")
Event = rx.event.EventSpec | list[rx.event.EventSpec] | None


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


def _search(filters: dict[str, str], before: int) -> audit_log.AuditPage:
    query = audit_log.AuditQuery(
        actor=filters.get("actor", ""), action=filters.get("action", ""),
        target=filters.get("target", ""), since=_day(filters.get("since", "")),
        until=_day(filters.get("until", "")), text=filters.get("text", ""),
        before=before or None, limit=PER_PAGE,
    )  # fmt: skip
    with session_scope() as db:
        return audit_log.search(db, query)


def _chain(force: bool) -> audit_log.ChainStatus:
    with session_scope() as db:
        return audit_log.chain_status(db, force=force)


class AuditState(rx.State):
    """The audit entries on screen, the filters that chose them, and how to page on."""

    rows: list[dict[str, str]] = []
    filters: dict[str, str] = {}
    filter_errors: dict[str, str] = {}
    # Cursors of the pages shown so far (0: the newest page) so "Newer" can step back.
    cursors: list[int] = [0]
    next_before: int = 0
    allowed: bool = True
    chain_state: str = ""
    chain_message: str = ""
    busy: bool = False

    async def _query(self) -> None:
        found = await asyncio.to_thread(_search, dict(self.filters), self.cursors[-1])
        self.rows, self.next_before = found.rows, found.next_before or 0

    def _hide(self) -> None:
        """Refused (signed out, or a viewer): the page says so, and shows no entries."""
        self.allowed, self.rows = False, []

    async def _load(self) -> None:
        self.allowed, self.cursors = True, [0]
        await self._query()
        if acting().role is Role.ADMIN:
            status = await asyncio.to_thread(_chain, False)
            self.chain_state, self.chain_message = status.state, status.message

    @rx.event
    @reads(Role.OPERATOR, on_refusal=_hide)
    async def load(self) -> Event:
        await self._load()
        return None

    @rx.event
    @reads(Role.OPERATOR)
    async def apply(self, form: dict[str, str]) -> Event:
        filters = {k: str(form.get(k, "")).strip()[:200] for k in FILTERS}
        errors = {k: "a date as YYYY-MM-DD" for k in ("since", "until")
                  if filters[k] and _day(filters[k]) is None}  # fmt: skip
        self.filters, self.filter_errors = filters, errors
        if errors:
            return None
        self.cursors = [0]
        await self._query()
        return None

    @rx.event
    @reads(Role.OPERATOR, on_refusal=_hide)
    async def clear(self) -> Event:
        self.filters, self.filter_errors = {}, {}
        await self._load()
        return None

    @rx.event
    @reads(Role.OPERATOR)
    async def older(self) -> Event:
        if not self.next_before:
            return None
        self.cursors = [*self.cursors, self.next_before]
        await self._query()
        return None

    @rx.event
    @reads(Role.OPERATOR)
    async def newer(self) -> Event:
        self.cursors = self.cursors[:-1] or [0]
        await self._query()
        return None

    @rx.event
    @reads(Role.ADMIN)
    async def verify(self):  # noqa: ANN201 - an async generator of events
        self.busy = True
        yield
        status = await asyncio.to_thread(_chain, True)
        self.chain_state, self.chain_message, self.busy = status.state, status.message, False

    @rx.var
    def page_number(self) -> int:
        return len(self.cursors)
