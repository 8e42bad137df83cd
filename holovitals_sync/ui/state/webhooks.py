"""State of the Webhooks tab: the lists on screen (paged on the server) and row actions.

Every handler resolves the session again first (its `@reads`/`@requires`): reading needs a
viewer, anything that changes something needs an operator. Database work runs in a thread so the
event loop keeps serving other browsers.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import reflex as rx

from ...db import session_scope
from ...models import DeliveryStatus, Role, WebhookSubscription
from ...services import labels
from ...services.auth import Principal
from ...services.webhooks import actions, subscriptions
from ..state.session import acting, reads, requires
from ..views import webhooks as wh
from ..views.paging import back_one, turn

PAGE_SIZE = 10
ALL = "all"
DELIVERY_STATUSES = [ALL, *(s.value for s in DeliveryStatus)]


def _page_subs(after: int) -> wh.Page:
    with session_scope() as session:
        return wh.subscriptions_page(session, after_id=after or None, limit=PAGE_SIZE)


def _page_deliveries(sub: str, status: str, after: int) -> wh.Page:
    with session_scope() as session:
        return wh.deliveries_page(
            session,
            subscription_id=int(sub) if sub.isdecimal() else None,
            status=DeliveryStatus(status) if status != ALL else None,
            after_id=after or None,
            limit=PAGE_SIZE,
        )


def _lookups() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    with session_scope() as session:
        return wh.inbound_rows(session), wh.subscription_names(session)


Cursors = tuple[int, str, str, int]  # subscriptions page, delivery filters, deliveries page


@dataclasses.dataclass
class Snapshot:
    """Everything the tab shows, read in one go off the event loop."""

    subs: wh.Page
    log: wh.Page
    inbound: list[dict[str, str]]
    names: list[dict[str, str]]


def read_lists(cursors: Cursors) -> Snapshot:
    """The pages of the tab's lists at `cursors` and their lookups (live.py re-reads them too)."""
    sub_after, delivery_sub, delivery_status, delivery_after = cursors
    return Snapshot(
        _page_subs(sub_after),
        _page_deliveries(delivery_sub, delivery_status, delivery_after),
        *_lookups(),
    )


def _set_active(principal: Principal, sub_id: int, active: bool) -> str | None:
    with session_scope() as session:
        row = session.get(WebhookSubscription, sub_id)
        if row is None:
            return "that subscription no longer exists"
        subscriptions.update(
            session,
            row=row,
            actor=principal.actor,
            patch=subscriptions.SubscriptionPatch(active=active),
        )
    return None


def _delete(principal: Principal, sub_id: int) -> str | None:
    with session_scope() as session:
        row = session.get(WebhookSubscription, sub_id)
        if row is None:
            return "that subscription no longer exists"
        subscriptions.delete(session, row=row, actor=principal.actor)
    return None


def _redeliver(principal: Principal, delivery_id: int) -> str | None:
    with session_scope() as session:
        try:
            actions.redeliver(session, delivery_id=delivery_id, actor=principal.actor)
        except actions.DeliveryNotFound:
            return "that delivery no longer exists"
    return None


class WebhooksState(rx.State):
    """Subscriptions with health, the delivery log and inbound counts: only what is on screen."""

    rows: list[dict[str, str]] = []
    sub_after: int = 0  # cursor of the page on screen (0: the first page)
    sub_next: int = 0  # cursor of the next page (0: none)
    sub_back: list[int] = []  # cursors of the pages before, for "Previous"

    deliveries: list[dict[str, str]] = []
    delivery_sub: str = ALL
    delivery_status: str = ALL
    delivery_after: int = 0
    delivery_next: int = 0
    delivery_back: list[int] = []

    inbound: list[dict[str, str]] = []
    sub_names: list[dict[str, str]] = []
    confirm_delete_id: str = ""
    confirm_delete_name: str = ""

    # What live.py calls (following.FollowedList). The leading "_" keeps them from the
    # browser: Reflex makes every other method an event handler.

    def _query(self) -> Cursors:
        """Which pages are on screen."""
        return self.sub_after, self.delivery_sub, self.delivery_status, self.delivery_after

    def _show(self, snapshot: Snapshot) -> None:
        self.rows, self.sub_next = snapshot.subs.rows, snapshot.subs.next_cursor or 0
        self.deliveries, self.delivery_next = snapshot.log.rows, snapshot.log.next_cursor or 0
        self.inbound, self.sub_names = snapshot.inbound, snapshot.names

    async def _refresh(self) -> None:
        self._show(await asyncio.to_thread(read_lists, self._query()))

    def _forget(self) -> None:
        """Refused (signed out): the lists shown do not stay in the tab's state."""
        self.rows, self.deliveries, self.inbound = [], [], []

    @rx.event
    @reads(on_refusal=_forget)
    async def load(self) -> rx.event.EventSpec | None:
        await self._refresh()
        return None

    # -- paging and filters (reads: viewers too) -----------------------------------------

    @rx.event
    @reads(on_refusal=_forget)
    async def subs_page(self, forward: bool) -> rx.event.EventSpec | None:
        self.sub_after, self.sub_back = turn(self.sub_after, self.sub_back, self.sub_next, forward)
        await self._refresh()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def deliveries_page(self, forward: bool) -> rx.event.EventSpec | None:
        self.delivery_after, self.delivery_back = turn(
            self.delivery_after, self.delivery_back, self.delivery_next, forward
        )
        await self._refresh()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def filter_deliveries(self, key: str, value: str) -> rx.event.EventSpec | None:
        if key == "subscription":
            self.delivery_sub = value
        elif value in DELIVERY_STATUSES:
            self.delivery_status = value
        self.delivery_after, self.delivery_back = 0, []
        await self._refresh()
        return None

    # -- row actions (operators) --------------------------------------------------------

    async def _act(
        self, work: Callable[..., str | None], *args: object
    ) -> rx.event.EventSpec | None:
        """Run a row action as the operator who called (the handler's `@requires` checked),
        then show the lists as they are now."""
        problem = await asyncio.to_thread(work, acting(), *args)
        await self._refresh()
        return rx.toast.error(labels.sentence(problem)) if problem else None

    @rx.event
    @requires(Role.OPERATOR)
    async def set_active(self, sub_id: str, active: bool) -> rx.event.EventSpec | None:
        return await self._act(_set_active, int(sub_id), active)

    @rx.event
    @requires(Role.OPERATOR)
    async def redeliver(self, delivery_id: str) -> rx.event.EventSpec | None:
        result = await self._act(_redeliver, int(delivery_id))
        return result or rx.toast.success(f"Delivery {delivery_id} queued again.")

    @rx.event
    @requires(Role.OPERATOR)
    async def ask_delete(self, sub_id: str, name: str) -> rx.event.EventSpec | None:
        self.confirm_delete_id, self.confirm_delete_name = sub_id, name
        return None

    @rx.event
    def cancel_delete(self) -> None:
        self.confirm_delete_id, self.confirm_delete_name = "", ""

    @rx.event
    @requires(Role.OPERATOR)
    async def confirm_delete(self) -> rx.event.EventSpec | None:
        sub_id = self.confirm_delete_id
        self.confirm_delete_id, self.confirm_delete_name = "", ""
        if not sub_id.isdecimal():
            return None
        if self.sub_after and len(self.rows) == 1:  # the page would be empty: go back one
            self.sub_after, self.sub_back = back_one(self.sub_back)
        return await self._act(_delete, int(sub_id))
