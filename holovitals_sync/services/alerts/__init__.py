"""Operational alerts: thresholds on queues, jobs, subscriptions and conflicts.

    evaluate(session, redis, settings) -> list[Alert]   run by the workers' maintenance tick
    list_alerts(session, *, status=None, offset=0, limit=50) -> list[Alert]
    count_open(session) -> int
    acknowledge(session, *, alert_id, actor) -> Alert   audited; AlertNotFound / AlertClosed
    set_threshold(session, *, kind, value, connection_id=None, queue=None, actor=None)

An open alert is raised once per (kind, subject) (`occurrences` counts the evaluations that
found it again), acknowledged by an operator, and closed by `evaluate` when its condition
clears. Raising emits the `alert.raised` webhook event and every change is published on the
Redis channel `holovitals:alerts:db<N>` (`channel_for`).
"""

from .evaluate import evaluate
from .publish import CHANNEL, channel_for
from .store import AlertClosed, AlertNotFound, acknowledge, count_open, list_alerts
from .thresholds import InvalidThreshold, defaults, list_overrides, set_threshold

__all__ = [
    "CHANNEL",
    "AlertClosed",
    "AlertNotFound",
    "InvalidThreshold",
    "acknowledge",
    "channel_for",
    "count_open",
    "defaults",
    "evaluate",
    "list_alerts",
    "list_overrides",
    "set_threshold",
]
