"""The Audit page's read model: filters over the log's non-PHI columns, keyset paging
newest first, rows as the page shows them, and the hash chain's verdict.

Every audit column holds ids, names, actions and settings (the log never holds PHI), so the
free text runs over actor, action, target, outcome, ip and the details' JSON text. Pages
are keyed on `seq` (unique, gap-free), so a page costs the same however deep it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import orjson
import sqlalchemy as sa
from sqlmodel import Session, select

from ...models import AuditLog, EHRConnection, User, WebhookSubscription
from ...services import audit, labels
from .times import when

MAX_LIMIT = 200
# Verifying walks the whole chain; on page load only when the log is at most this long.
CHEAP_VERIFY_LIMIT = 20_000


@dataclass(frozen=True)
class AuditQuery:
    actor: str = ""
    action: str = ""
    target: str = ""  # "connection", "connection 5" or "5"
    since: date | None = None  # inclusive, UTC days
    until: date | None = None  # inclusive
    text: str = ""
    before: int | None = None  # seq cursor: entries older than this
    limit: int = 25


@dataclass(frozen=True)
class AuditPage:
    rows: list[dict[str, str]]
    next_before: int | None  # pass as `before` for the next (older) page


def _like(column: sa.ColumnElement, text: str) -> sa.ColumnElement[bool]:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.func.lower(column).like(f"%{escaped.lower()}%", escape="\\")


def _target(text: str) -> sa.ColumnElement[bool]:
    kind, _, ident = text.strip().partition(" ")
    if ident:
        return sa.and_(AuditLog.target_type == kind, AuditLog.target_id == ident.strip())
    return sa.or_(AuditLog.target_type == kind, AuditLog.target_id == kind)


def _conditions(query: AuditQuery) -> list[sa.ColumnElement[bool]]:
    found: list[sa.ColumnElement[bool]] = []
    if query.actor.strip():
        found.append(_like(AuditLog.actor, query.actor.strip()))
    if query.action.strip():
        found.append(_like(AuditLog.action, query.action.strip()))
    if query.target.strip():
        found.append(_target(query.target))
    if query.since:
        found.append(AuditLog.at >= datetime.combine(query.since, time(), UTC))
    if query.until:
        found.append(AuditLog.at < datetime.combine(query.until + timedelta(days=1), time(), UTC))
    if query.text.strip():
        text = query.text.strip()
        columns = [
            AuditLog.actor,
            AuditLog.action,
            AuditLog.target_type,
            AuditLog.target_id,
            AuditLog.outcome,
            AuditLog.ip,
            sa.cast(AuditLog.details, sa.String),
        ]
        found.append(sa.or_(*[_like(sa.func.coalesce(c, ""), text) for c in columns]))
    if query.before is not None:
        found.append(AuditLog.seq < query.before)
    return found


# Targets shown by name: the audit row keeps the id, the page says which one it is.
NAMED_TARGETS = {
    "connection": (EHRConnection.id, EHRConnection.name),
    "ehr_connection": (EHRConnection.id, EHRConnection.name),
    "webhook_subscription": (WebhookSubscription.id, WebhookSubscription.name),
    "user": (User.id, User.username),
}
Names = dict[tuple[str, str], str]


def target_names(session: Session, entries: list[AuditLog]) -> Names:
    """(target type, id) -> name for the named targets of a page (one query per type)."""
    wanted: dict[str, set[int]] = {}
    for entry in entries:
        if entry.target_type in NAMED_TARGETS and str(entry.target_id or "").isdecimal():
            wanted.setdefault(entry.target_type, set()).add(int(entry.target_id))
    names: Names = {}
    for kind, ids in wanted.items():
        key, name = NAMED_TARGETS[kind]
        for ident, found in session.exec(select(key, name).where(key.in_(sorted(ids)))):
            names[(kind, str(ident))] = found
    return names


def to_row(entry: AuditLog, names: Names | None = None) -> dict[str, str]:
    """One entry as the page shows it; `target_code` and `details_json` for the tooltips."""
    target_code = f"{entry.target_type or ''} {entry.target_id or ''}".strip() or "—"
    return {
        "seq": str(entry.seq),
        "at": when(entry.at),  # the column says "(UTC)"
        "actor": entry.actor,
        "actor_kind": entry.actor_kind.value,
        "action": entry.action,
        "target": labels.target_label(entry.target_type, entry.target_id, names or {}),
        "target_code": target_code,
        "outcome": entry.outcome,
        "details": labels.details_text(entry.details),
        "details_json": orjson.dumps(entry.details or {}, option=orjson.OPT_SORT_KEYS).decode(),
    }


def search(session: Session, query: AuditQuery) -> AuditPage:
    """Newest first; at most `limit` rows and the cursor of the next older page."""
    limit = max(1, min(query.limit, MAX_LIMIT))
    statement = (select(AuditLog).where(*_conditions(query))
                 .order_by(AuditLog.seq.desc()).limit(limit + 1))  # fmt: skip
    entries = list(session.exec(statement))
    more = len(entries) > limit
    entries = entries[:limit]
    names = target_names(session, entries)
    return AuditPage([to_row(e, names) for e in entries], entries[-1].seq if more else None)


@dataclass(frozen=True)
class ChainStatus:
    state: str  # "ok", "broken", "skipped" (too long to walk on load)
    message: str


def chain_status(session: Session, *, force: bool = False) -> ChainStatus:
    """The hash chain's verdict, unless the log is too long to walk cheaply (then on request)."""
    entries = audit.count_entries(session)
    if entries > CHEAP_VERIFY_LIMIT and not force:
        return ChainStatus("skipped", f"{entries} entries: verify on request")
    report = audit.verify_chain(session)
    if report.ok:
        return ChainStatus("ok", f"hash chain intact ({report.entries} entries)")
    return ChainStatus("broken", f"chain broken at entry {report.first_bad_seq}: {report.problem}")
