"""Alerts in the dashboard: the banner's open alerts and the /alerts page's list.

Both are re-read when the live watcher sees an alert event (raised, acknowledged, closed),
through the hooks `following.FollowedList` declares; nothing polls.
"""

from __future__ import annotations

import asyncio
import dataclasses

import reflex as rx
from sqlmodel import Session, select

from ...db import session_scope
from ...models import Alert, AlertStatus, Role, WebhookSubscription
from ...services import alerts, labels
from ...services.auth import Principal
from ..views import dashboard
from ..views.times import clock
from .session import acting, reads, requires

PAGE_SIZE = 20
BANNER_SIZE = 3
ANY = "all"


@dataclasses.dataclass
class Names:
    """Connection and subscription names, so alerts speak of them as people know them."""

    connections: dict[int, str]
    subscriptions: dict[int, str]

    @classmethod
    def read(cls, session: Session) -> Names:
        subs = session.exec(select(WebhookSubscription.id, WebhookSubscription.name)).all()
        return cls(dashboard.connection_names(session), dict(subs))


@dataclasses.dataclass
class AlertRow:
    """One alert as shown: names, counts and thresholds (the service keeps PHI out).

    `subject` and `kind` are the machine values, kept for the tooltips support reads.
    """

    id: int = 0
    kind: str = ""
    kind_label: str = ""
    severity: str = ""
    subject: str = ""
    title: str = ""
    message: str = ""
    status: str = ""
    raised: str = ""
    acknowledged_by: str = ""
    closed: str = ""

    @classmethod
    def of(cls, alert: Alert, names: Names) -> AlertRow:
        return cls(id=int(alert.id or 0), kind=alert.kind.value,
                   kind_label=labels.ALERT_KINDS.get(alert.kind.value, alert.kind.value),
                   severity=alert.severity.value, subject=alert.subject,
                   title=labels.alert_title(alert.subject, names.connections,
                                            names.subscriptions),
                   message=labels.sentence(labels.with_names(
                       alert.message, names.connections, names.subscriptions)),
                   status=alert.status.value, raised=clock(alert.raised_at),
                   acknowledged_by=alert.acknowledged_by or "",
                   closed=clock(alert.closed_at) if alert.closed_at else "")  # fmt: skip


@dataclasses.dataclass
class Snapshot:
    open_count: int
    banner: list[AlertRow]
    rows: list[AlertRow]
    has_next: bool


Query = tuple[str, int]  # the status filter and offset of the page on screen


def read_page(query: Query) -> Snapshot:
    """The banner's figures and one page of the list (one row more tells if there is more)."""
    status, offset = query
    wanted = AlertStatus(status) if status in {s.value for s in AlertStatus} else None
    with session_scope() as session:
        banner = alerts.list_alerts(session, status=AlertStatus.OPEN, limit=BANNER_SIZE)
        page = alerts.list_alerts(session, status=wanted, offset=offset, limit=PAGE_SIZE + 1)
        names = Names.read(session)
        return Snapshot(
            alerts.count_open(session),
            [AlertRow.of(a, names) for a in banner],
            [AlertRow.of(a, names) for a in page[:PAGE_SIZE]],
            len(page) > PAGE_SIZE,
        )


def _acknowledge(alert_id: int, principal: Principal) -> None:
    with session_scope() as session:
        alerts.acknowledge(session, alert_id=alert_id, actor=principal.actor)


class AlertsState(rx.State):
    """Open alerts for the banner, and the page of alerts the list shows."""

    open_count: int = 0
    open_text: str = ""  # "1 open alert", "3 open alerts"
    banner: list[AlertRow] = []
    rows: list[AlertRow] = []
    status_filter: str = AlertStatus.OPEN.value
    offset: int = 0
    has_next: bool = False

    # What live.py calls (following.FollowedList). The leading "_" keeps them from the
    # browser: Reflex makes every other method an event handler.

    def _query(self) -> Query:
        """The status filter and offset of the page on screen."""
        return self.status_filter, self.offset

    def _show(self, snapshot: Snapshot) -> None:
        self.open_count, self.banner = snapshot.open_count, snapshot.banner
        self.open_text = labels.plural(snapshot.open_count, "open alert")
        self.rows, self.has_next = snapshot.rows, snapshot.has_next

    async def _reload(self) -> None:
        self._show(await asyncio.to_thread(read_page, self._query()))

    def _forget(self) -> None:
        """Refused (signed out): the alerts shown do not stay in the tab's state."""
        self.rows, self.banner = [], []

    @rx.event
    @reads(on_refusal=_forget)
    async def load(self) -> rx.event.EventSpec | None:
        await self._reload()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def filter_status(self, value: str) -> rx.event.EventSpec | None:
        self.status_filter, self.offset = value, 0
        await self._reload()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def page(self, step: int) -> rx.event.EventSpec | None:
        if int(step) > 0 and not self.has_next:
            return None
        self.offset = max(0, self.offset + int(step) * PAGE_SIZE)
        await self._reload()
        return None

    @rx.event
    @requires(Role.OPERATOR)
    async def acknowledge(self, alert_id: int) -> rx.event.EventSpec | None:
        try:
            await asyncio.to_thread(_acknowledge, int(alert_id), acting())
        except (alerts.AlertNotFound, alerts.AlertClosed) as exc:
            await self._reload()
            message = str(exc) if isinstance(exc, alerts.AlertClosed) else "No such alert"
            return rx.toast.error(labels.sentence(message))
        await self._reload()
        return rx.toast.success(f"Alert {alert_id} acknowledged.")
