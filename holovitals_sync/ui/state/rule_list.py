"""Admin actions on a connection's ordered rule list: enable/disable, move, delete.

Shared by the transformation rules and the custom validation rules panels. Each state
holding a list says how one change is applied (`_apply_change`, run in a thread) and how
its list is read again (`_reload`).
"""

from __future__ import annotations

import asyncio

import reflex as rx

from ...models import Role
from ...services import labels
from ...services.audit import Actor
from .session import acting, requires

Event = rx.event.EventSpec | list[rx.event.EventSpec] | None


class RuleListActions(rx.State, mixin=True):
    """Toggle, move and delete, each checked against the admin role again (`@requires`)."""

    connection_id: int = 0
    rules: list[dict[str, str]] = []

    def _apply_change(self, rule_id: str, action: str, actor: Actor) -> str:
        """Apply `action` (enable, disable, up, down, delete); "" or why not."""
        raise NotImplementedError

    async def _reload(self) -> None:
        raise NotImplementedError

    async def _act(self, rule_id: str, action: str) -> Event:
        """One change, for the handlers below (their `@requires` checked the admin role)."""
        problem = await asyncio.to_thread(self._apply_change, rule_id, action,
                                          acting().actor)  # fmt: skip
        await self._reload()
        return rx.toast.error(labels.sentence(problem)) if problem else None

    @rx.event
    @requires(Role.ADMIN)
    async def toggle(self, rule_id: str, enabled: bool) -> Event:
        return await self._act(rule_id, "enable" if enabled else "disable")

    @rx.event
    @requires(Role.ADMIN)
    async def move(self, rule_id: str, direction: str) -> Event:
        return await self._act(rule_id, "up" if direction == "up" else "down")

    @rx.event
    @requires(Role.ADMIN)
    async def delete(self, rule_id: str) -> Event:
        return await self._act(rule_id, "delete")
