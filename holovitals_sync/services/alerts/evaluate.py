"""`evaluate`: run every check, raise new alerts, count repeats, close cleared ones.

Called from the workers' maintenance tick (one worker per tick, see `workers.worker`).
Raising emits the `alert.raised` webhook event in the same transaction and publishes on the
alerts channel after the commit.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ...config import Settings
from ...models import Alert, AlertKind, AlertStatus
from ..webhooks.emit import emit
from . import thresholds
from .checks import CHECKS, Context, Finding
from .publish import publish

log = logging.getLogger(__name__)


def _findings(ctx: Context) -> dict[AlertKind, list[Finding]]:
    """Every check's findings; a check that fails is left out (its alerts stay as they are)."""
    results: dict[AlertKind, list[Finding]] = {}
    for kind, check in CHECKS.items():
        try:
            results[kind] = check(ctx)
        except Exception as exc:  # one broken check must not silence the others
            log.warning("alert check %s failed: %s", kind.value, type(exc).__name__)
            ctx.session.rollback()  # nothing is written yet; PostgreSQL needs a clean state
    return results


def _open(session: Session, finding: Finding, ctx: Context) -> Alert | None:
    """Insert a new alert; None when another evaluator inserted it first."""
    alert = Alert(
        kind=finding.kind,
        severity=finding.severity,
        subject=finding.subject,
        message=finding.message,
        connection_id=finding.connection_id,
        queue=finding.queue,
        raised_at=ctx.now,
        last_seen_at=ctx.now,
    )
    try:
        with session.begin_nested():
            session.add(alert)
    except sa.exc.IntegrityError:
        return None
    emit(
        session,
        "alert.raised",
        {"alert_id": alert.id, "alert_kind": finding.kind.value, **finding.refs},
    )
    return alert


def _seen(alert: Alert, finding: Finding, ctx: Context) -> None:
    alert.occurrences += 1
    alert.last_seen_at = ctx.now
    alert.message = finding.message  # the latest counts


def evaluate(session: Session, redis: Any, settings: Settings) -> list[Alert]:
    """One evaluation round; commits.

    Returns:
        The active alerts whose condition holds now (newly raised and repeated ones).
    """
    ctx = Context(session, redis, settings, thresholds.load(session, settings))
    results = _findings(ctx)
    active = {
        (a.kind, a.subject): a
        for a in session.exec(select(Alert).where(Alert.status != AlertStatus.CLOSED))
    }
    holding: list[Alert] = []
    raised: list[Alert] = []
    closed: list[Alert] = []
    for kind, findings in results.items():
        for finding in findings:
            alert = active.pop((kind, finding.subject), None)
            if alert is not None:
                _seen(alert, finding, ctx)
                session.add(alert)
            elif (alert := _open(session, finding, ctx)) is not None:
                raised.append(alert)
            if alert is not None:
                holding.append(alert)
    for (kind, _subject), alert in active.items():
        if kind in results:  # the check ran and no longer finds the condition
            alert.status, alert.closed_at = AlertStatus.CLOSED, ctx.now
            session.add(alert)
            closed.append(alert)
    session.commit()
    for alert in raised:
        log.warning("alert %s raised: %s %s", alert.id, alert.kind.value, alert.subject)
        publish(redis, alert, "raised")
    for alert in closed:
        log.info("alert %s closed: %s %s", alert.id, alert.kind.value, alert.subject)
        publish(redis, alert, "closed")
    return holding
