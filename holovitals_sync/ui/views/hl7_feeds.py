"""What the connection page shows of a feed: rows of plain strings, no message content.

Built from the same sources as the API's activity route (`stats.feed_view` and the stored
messages' columns), shaped for the dashboard: times as text, the per-minute series as bars.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ...db import session_scope
from ...services.hl7 import feeds
from ...services.hl7.stats import feed_view
from ...services.platform.redis import redis_connection
from . import times


def _when(value: Any) -> str:
    if not value:
        return "never"
    at = (
        value
        if isinstance(value, datetime)
        else (
            datetime.fromisoformat(value)
            if isinstance(value, str)
            else datetime.fromtimestamp(float(value), UTC)
        )
    )
    return times.when(at.astimezone(UTC), zone=True)


def feed_rows(connection_id: int) -> list[dict[str, str]]:
    with session_scope() as session:
        return [
            {
                "id": str(f.id),
                "application": f.sending_application,
                "facility": f.sending_facility or "any",
                "systems": ", ".join(
                    f"{k} → {v}" for k, v in sorted((f.identifier_systems or {}).items())
                )
                or "—",
            }
            for f in feeds.list_feeds(session, connection_id)
        ]


def activity(connection_id: int) -> dict[str, Any]:
    """The feed's activity for the page (every value a string or a list of string dicts)."""
    view = feed_view(redis_connection(), connection_id)
    series = view["messages_per_minute"]
    top = max(series) or 1
    with session_scope() as session:
        messages = feeds.recent_messages(session, connection_id, limit=10)
        stored = feeds.status_counts(session, connection_id)
    acks = view["acks_today"]
    return {
        "last": _when(view["last_message_at"]),
        "this_minute": str(series[-1] if series else 0),
        "bars": [{"n": str(n), "pct": f"{max(4, round(100 * n / top))}%"} for n in series],
        "acks": f"AA {acks['AA']} · AE {acks['AE']} · AR {acks['AR']}",
        "stored": " · ".join(f"{k} {v}" for k, v in sorted(stored.items())) or "none",
        "senders": [
            {
                "peer": s["peer"],
                "sender": s["sender"],
                "since": _when(s["since"]),
                "messages": str(s["messages"]),
            }
            for s in view["senders"]
        ],
        "rejects": [{"reason": reason, "count": str(n)} for reason, n in view["rejects"].items()],
        "messages": [
            {
                "control_id": m.control_id,
                "event": m.message_type,
                "status": m.status.value,
                "outcome": m.outcome or "",
                "patient": m.patient_id or "",
                "job": str(m.job_id or ""),
                "received": _when(m.received_at),
            }
            for m in messages
        ],
    }


def add(connection_id: int, application: str, facility: str, actor: Any) -> str:
    """Map a sender; "" or why not (a sentence for a toast)."""
    from ...models import EHRConnection

    with session_scope() as session:
        connection = session.get(EHRConnection, connection_id)
        if connection is None:
            return "This connection no longer exists."
        try:
            feeds.add_feed(
                session,
                connection=connection,
                sending_application=application.strip(),
                sending_facility=facility.strip(),
                identifier_systems={},
                actor=actor,
            )
        except (feeds.InvalidFeed, feeds.SenderTaken) as exc:
            return str(exc)
    return ""


def remove(connection_id: int, feed_id: int, actor: Any) -> str:
    with session_scope() as session:
        try:
            feeds.remove_feed(session, connection_id=connection_id, feed_id=feed_id, actor=actor)
        except feeds.FeedNotFound:
            return "This feed no longer exists."
    return ""
