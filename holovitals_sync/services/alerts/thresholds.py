"""Alert thresholds: the `HOLOVITALS_ALERT_*` defaults, overridden per connection or queue.

Overrides live in the `alert_threshold` table (see `models.alerts.AlertThreshold` for why a
table): a row with `connection_id` applies to that connection, a row with `queue` to that
queue family. Everything else uses the setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, select

from ...config import QUEUE_FAMILIES, Settings
from ...models import AlertKind, AlertThreshold
from .. import audit

# The setting each kind defaults to; a subscription being disabled needs no threshold.
SETTING_FOR: dict[AlertKind, str] = {
    AlertKind.QUEUE_DEPTH: "alert_queue_depth",
    AlertKind.JOB_FAILURES: "alert_failure_streak",
    AlertKind.JOB_SLOW: "alert_slow_factor",
    AlertKind.CONFLICT_BACKLOG: "alert_conflict_backlog",
    AlertKind.FEED_SILENT: "alert_feed_silence_minutes",
}
# A failure streak is counted over at most this many recent runs (the setting's maximum).
MAX_STREAK = 100


class InvalidThreshold(ValueError):
    """A threshold for a kind that has none, a bad target or an out-of-range value."""


@dataclass
class Thresholds:
    """The effective thresholds of one evaluation (loaded once, looked up many times)."""

    settings: Settings
    by_connection: dict[tuple[AlertKind, int], float] = field(default_factory=dict)
    by_queue: dict[tuple[AlertKind, str], float] = field(default_factory=dict)

    def default(self, kind: AlertKind) -> float:
        return float(getattr(self.settings, SETTING_FOR[kind]))

    def for_connection(self, kind: AlertKind, connection_id: int) -> float:
        return self.by_connection.get((kind, connection_id), self.default(kind))

    def for_queue(self, kind: AlertKind, queue: str) -> float:
        return self.by_queue.get((kind, queue), self.default(kind))


def load(session: Session, settings: Settings) -> Thresholds:
    """Every override, with the settings as the fallback."""
    result = Thresholds(settings)
    for row in session.exec(select(AlertThreshold)):
        if row.connection_id is not None:
            result.by_connection[(row.kind, row.connection_id)] = row.value
        elif row.queue is not None:
            result.by_queue[(row.kind, row.queue)] = row.value
    return result


def _check(kind: AlertKind, value: float, connection_id: int | None, queue: str | None) -> None:
    if kind not in SETTING_FOR:
        raise InvalidThreshold(f"{kind.value} alerts have no threshold")
    if (connection_id is None) == (queue is None):
        raise InvalidThreshold("give either a connection or a queue family")
    if queue is not None and (kind != AlertKind.QUEUE_DEPTH or queue not in QUEUE_FAMILIES):
        raise InvalidThreshold("queue thresholds are queue depths of a known queue family")
    if queue is None and kind == AlertKind.QUEUE_DEPTH:
        raise InvalidThreshold("queue depth thresholds are per queue family")
    # Minutes of silence may be a fraction (a feed of a busy hospital is missed within one).
    low = {AlertKind.JOB_SLOW: 1.0001, AlertKind.FEED_SILENT: 0.05}.get(kind, 1.0)
    high = MAX_STREAK if kind == AlertKind.JOB_FAILURES else 10_000_000
    if not low <= value <= high:
        raise InvalidThreshold(f"threshold must be from {low:g} to {high:g}")


def defaults(settings: Settings) -> dict[str, float]:
    """The setting-backed default of each kind that has a threshold."""
    return {kind.value: float(getattr(settings, name)) for kind, name in SETTING_FOR.items()}


def list_overrides(session: Session) -> list[AlertThreshold]:
    return list(session.exec(select(AlertThreshold).order_by(AlertThreshold.id)))


def set_threshold(
    session: Session,
    *,
    kind: AlertKind,
    value: float | None,
    connection_id: int | None = None,
    queue: str | None = None,
    actor: audit.Actor | None = None,
) -> None:
    """Store (or with `value` None remove) an override; commits with the caller's session.

    Audited when an `actor` is given (a person or token changing it through the API).
    """
    _check(
        kind,
        value if value is not None else 1.0 + (kind == AlertKind.JOB_SLOW),
        connection_id,
        queue,
    )
    row = session.exec(
        select(AlertThreshold).where(
            AlertThreshold.kind == kind,
            AlertThreshold.connection_id == connection_id,
            AlertThreshold.queue == queue,
        )
    ).first()
    if actor is not None:
        audit.record(
            session,
            actor=actor,
            action="alert_threshold.set",
            target_type="alert_threshold",
            target_id=kind.value,
            details={"connection_id": connection_id, "queue": queue, "value": value},
        )
    if value is None:
        if row is not None:
            session.delete(row)
        return
    row = row or AlertThreshold(kind=kind, connection_id=connection_id, queue=queue, value=value)
    row.value = value
    session.add(row)
    session.flush()
