"""Read-side views of outbound webhooks for the dashboard: pages of plain string rows.

Subscriptions with their health and the delivery log are paged on the server with a keyset
cursor (newest first, `id < cursor`), so the UI only ever holds the rows on screen. Rows are
ids, names, states and times only; a secret is never read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session, select

from ...models import DeliveryStatus, EHRConnection, WebhookDelivery, WebhookSubscription
from ...services import labels
from ...services.webhooks.events import TEST_EVENT
from ...services.webhooks.stats import inbound_stats
from . import times

Row = dict[str, str]
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows and the cursor of the next page (None: this is the last)."""

    rows: list[Row]
    next_cursor: int | None


when = times.when  # in columns headed "(UTC)"


def health_of(sub: WebhookSubscription) -> str:
    """active, auto-disabled (switched off by the failure rule) or disabled (by a person)."""
    if sub.active:
        return "active"
    # No column says why; failures behind an inactive one mean the failure rule did it
    # (the same reading as SubscriptionOut.disabled_reason).
    return "auto-disabled" if sub.failure_streak else "disabled"


def _keyset(query: Any, column: Any, after_id: int | None, limit: int) -> tuple[Any, int]:
    limit = max(1, min(limit, MAX_PAGE))
    if after_id is not None:
        query = query.where(column < after_id)
    return query.order_by(column.desc()).limit(limit + 1), limit


def _latest_deliveries(session: Session, ids: list[int]) -> dict[int, WebhookDelivery]:
    """The newest real delivery of each subscription in `ids` (one query for the page)."""
    if not ids:
        return {}
    # Test events are an operator's probe, not the subscription's health (as in delivery.py).
    newest = (
        select(sa.func.max(WebhookDelivery.id))
        .where(
            WebhookDelivery.subscription_id.in_(ids),  # type: ignore[attr-defined]
            WebhookDelivery.event_type != TEST_EVENT,
        )
        .group_by(WebhookDelivery.subscription_id)
    )
    rows = session.exec(select(WebhookDelivery).where(WebhookDelivery.id.in_(newest)))  # type: ignore[union-attr]
    return {row.subscription_id: row for row in rows}


def subscription_row(sub: WebhookSubscription, last: WebhookDelivery | None) -> Row:
    return {
        "id": str(sub.id),
        "name": sub.name,
        "url": sub.url,
        "events": str(len(sub.event_types)),
        "algorithm": sub.algorithm.value,
        "health": health_of(sub),
        "active": "yes" if sub.active else "no",
        "content": "yes" if sub.include_content else "no",  # sends the resource (PHI)
        "failure_streak": str(sub.failure_streak),
        "last_delivery": when(last.updated_at if last else sub.last_delivery_at),
        "last_status": last.status.value if last else "—",
        "last_code": str(last.response_status) if last and last.response_status else "",
        "last_success": when(sub.last_success_at),
    }


def subscriptions_page(session: Session, *, after_id: int | None = None, limit: int = 20) -> Page:
    """Subscriptions newest first with their health and newest delivery."""
    query, limit = _keyset(select(WebhookSubscription), WebhookSubscription.id, after_id, limit)
    subs = list(session.exec(query))
    more, subs = len(subs) > limit, subs[:limit]
    latest = _latest_deliveries(session, [s.id for s in subs])
    rows = [subscription_row(s, latest.get(s.id)) for s in subs]
    return Page(rows, subs[-1].id if more and subs else None)


def delivery_row(row: WebhookDelivery, names: dict[int, str]) -> Row:
    return {
        "id": str(row.id),
        "subscription_id": str(row.subscription_id),
        "subscription": names.get(row.subscription_id, str(row.subscription_id)),
        "event_type": row.event_type,
        "event_id": row.event_id,
        "status": row.status.value,
        "attempts": str(row.attempts),
        "code": str(row.response_status) if row.response_status is not None else "—",
        "ms": str(row.response_ms) if row.response_ms is not None else "—",
        "error": row.last_error or "",
        "created": when(row.created_at),
        "updated": when(row.updated_at),
    }


def deliveries_page(
    session: Session,
    *,
    subscription_id: int | None = None,
    status: DeliveryStatus | None = None,
    after_id: int | None = None,
    limit: int = 20,
) -> Page:
    """The delivery log, newest first, optionally of one subscription and one status."""
    query = select(WebhookDelivery)
    if subscription_id is not None:
        query = query.where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    query, limit = _keyset(query, WebhookDelivery.id, after_id, limit)
    rows = list(session.exec(query))
    more, rows = len(rows) > limit, rows[:limit]
    ids = sorted({r.subscription_id for r in rows})
    names = (
        dict(
            session.exec(
                select(WebhookSubscription.id, WebhookSubscription.name).where(
                    WebhookSubscription.id.in_(ids)  # type: ignore[union-attr]
                )
            ).all()
        )
        if ids
        else {}
    )
    return Page([delivery_row(r, names) for r in rows], rows[-1].id if more and rows else None)


def inbound_rows(session: Session) -> list[Row]:
    """Inbound events per connection: counts by status and rejections by reason."""
    out: list[Row] = []
    for stats in inbound_stats(session):
        counts = stats.by_status
        rejections = ", ".join(f"{reason}: {n}" for reason, n in sorted(stats.rejections.items()))
        out.append(
            {
                "connection": stats.connection_name or "unknown connection",
                "auth": stats.inbound_auth or "—",
                "received": str(sum(counts.values())),
                "processed": str(counts.get("processed", 0)),
                "duplicates": str(counts.get("duplicate", 0)),
                "rejected": str(counts.get("rejected", 0)),
                "failed": str(counts.get("failed", 0)),
                "rejections": rejections or "—",
                "last": when(stats.last_received_at),
            }
        )
    return out


def connection_choices(session: Session) -> list[Row]:
    """Connections a subscription may be filtered to: id and name."""
    rows = session.exec(select(EHRConnection.id, EHRConnection.name).order_by(EHRConnection.name))
    return [{"id": str(cid), "name": name} for cid, name in rows]


def subscription_names(session: Session) -> list[Row]:
    """Every subscription's id and name, for the delivery log's filter."""
    rows = session.exec(
        select(WebhookSubscription.id, WebhookSubscription.name)
        .order_by(WebhookSubscription.id.desc())  # type: ignore[union-attr]
        .limit(500)
    )
    return [{"id": str(sid), "name": name} for sid, name in rows]


def field_errors(exc: ValidationError) -> dict[str, str]:
    """A pydantic error as field -> first message in words, shown next to each form field."""
    out: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "form"
        out.setdefault(field, labels.field_message(error))
    return out
