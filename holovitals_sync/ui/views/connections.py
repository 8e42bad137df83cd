"""Read-side helpers for the Connections page: a server-side page of rows and schedules.

Rows are plain strings (ids, names, states, times): never a secret, never PHI.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from croniter import croniter
from sqlmodel import Session, select

from ...models import EHRConnection
from ...models.types import utcnow
from ...services import vendors
from ...services.connections import ConnectionPatch, check_resource_types
from ...services.orchestration.schedules import next_due
from . import times

Row = dict[str, str]
MAX_PAGE = 100


when = functools.partial(times.when, precision="minute", zone=True)


def _test_verdict(row: EHRConnection) -> str:
    if row.last_test_ok is None:
        return "never tested"
    return "passed" if row.last_test_ok else "failed"


def to_row(row: EHRConnection) -> Row:
    profile = vendors.profile(row.vendor.value)
    return {
        "id": str(row.id),
        "name": row.name,
        "vendor": row.vendor.value,
        "vendor_label": profile.display_name if profile else row.vendor.value,
        "status": row.status.value,
        "last_synced": when(row.last_synced_at),
        "schedule": row.sync_schedule or "",  # "": none (the page says so in words)
        "sweep": row.sweep_schedule or "",  # "": the id sweep is off
        "concurrency": str(row.concurrency_limit),
        "test": _test_verdict(row),
        "auth_method": row.auth_method.value,
        "has_key": "yes" if row.private_key_encrypted else "",
    }


@dataclass(frozen=True)
class ConnectionPage:
    rows: list[Row]
    total: int
    page: int  # 0-based, clamped to the last page
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def connection_page(
    session: Session, *, page: int = 0, per_page: int = 20, search: str = ""
) -> ConnectionPage:
    """One page of connections by name, optionally those whose name contains `search`."""
    per_page = max(1, min(per_page, MAX_PAGE))
    where = sa.true()
    if search.strip():
        where = EHRConnection.name.ilike(f"%{_escape(search.strip())}%", escape="\\")
    total = session.exec(select(sa.func.count()).select_from(EHRConnection).where(where)).one()
    page = max(0, min(page, max(0, -(-total // per_page) - 1)))
    query = (select(EHRConnection).where(where).order_by(EHRConnection.name, EHRConnection.id)
             .offset(page * per_page).limit(per_page))  # fmt: skip
    return ConnectionPage([to_row(r) for r in session.exec(query)], total, page, per_page)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class SchedulePreview:
    error: str  # "" when the expression is valid (or empty: no schedule)
    next_runs: list[datetime]


def schedule_preview(
    expression: str, *, count: int = 5, now: datetime | None = None
) -> SchedulePreview:
    """Whether a cron expression is valid, and its next `count` run times (UTC)."""
    expression = expression.strip()
    if not expression:
        return SchedulePreview("", [])
    if not croniter.is_valid(expression):
        return SchedulePreview("not a valid cron expression (minute hour day month weekday)", [])
    runs, at = [], now or utcnow()
    for _ in range(count):
        at = next_due(expression, at)
        runs.append(at)
    return SchedulePreview("", runs)


# How a full sync reads the EHR, as the schedule card offers it (`full_sync_via`).
FULL_SYNC_VIA = {
    "export": "Bulk Data export where offered",
    "search": "Paged search",
}


def schedule_patch(
    expression: str,
    concurrency: str,
    sweep: str | None = None,
    full_sync_via: str | None = None,
    *,
    page_size: str | None = None,
    streams: str | None = None,
    resource_types: str | None = None,
) -> tuple[ConnectionPatch | None, dict[str, str]]:
    """The schedule form as a patch, or messages per field ("schedule", "concurrency",
    "sweep", "full_sync_via", "page_size", "streams"). `sweep` is the id sweep's cron
    (blank: off), `full_sync_via` "export" or "search", `page_size` the `_count` to ask for
    (blank: the vendor's), `streams` the types one sync pages at once and `resource_types`
    the types to sync, separated by commas or spaces (blank: all); None leaves any of them
    as it is."""
    errors: dict[str, str] = {}
    if full_sync_via is not None and full_sync_via not in FULL_SYNC_VIA:
        errors["full_sync_via"] = "export or search"
    preview = schedule_preview(expression, count=1)
    if preview.error:
        errors["schedule"] = preview.error
    if sweep is not None and (sweep_error := schedule_preview(sweep, count=1).error):
        errors["sweep"] = sweep_error
    limit = _whole(concurrency, 1, 50, "concurrency", errors)
    paging = _paging_fields(page_size, streams, errors)
    if resource_types is not None:
        paging["resource_types"] = _types_field(resource_types, errors)
    if errors:
        return None, errors
    fields: dict[str, object] = {
        "sync_schedule": expression.strip() or None,
        "concurrency_limit": limit,
        **paging,
    }
    if sweep is not None:
        fields["sweep_schedule"] = sweep.strip() or None
    if full_sync_via is not None:
        fields["full_sync_via"] = full_sync_via
    return ConnectionPatch(**fields), {}


def _whole(text: str, low: int, high: int, name: str, errors: dict[str, str]) -> int:
    """`text` as a whole number from `low` to `high`, or 0 with a message under `name`."""
    try:
        value = int(text.strip())
        if low <= value <= high:
            return value
    except ValueError:
        pass
    errors[name] = f"a whole number from {low} to {high}"
    return 0


def _paging_fields(
    page_size: str | None, streams: str | None, errors: dict[str, str]
) -> dict[str, object]:
    """The page size (blank: the vendor's default, stored as None) and the stream limit."""
    fields: dict[str, object] = {}
    if page_size is not None:
        text = page_size.strip()
        fields["page_size"] = _whole(text, 10, 10_000, "page_size", errors) if text else None
        if "page_size" in errors:
            errors["page_size"] = "blank (the vendor's), or " + errors["page_size"]
    if streams is not None:
        fields["stream_limit"] = _whole(streams, 1, 16, "streams", errors)
    return fields


def _types_field(text: str, errors: dict[str, str]) -> list[str]:
    """The types to sync as typed (commas or spaces between them), checked as the API
    checks them; [] for all."""
    try:
        return check_resource_types(text.replace(",", " ").split())
    except ValueError as exc:
        errors["resource_types"] = str(exc)
        return []


def types_text(types: list[str]) -> str:
    """The types to sync as the schedule card shows them ("" for all)."""
    return ", ".join(types)


def streams_capped(streams: str, concurrency: str) -> str:
    """What to say when more types would page at once than the connection's jobs at once.

    Each stream is a request at the EHR and counts against that limit, so a sync pages at
    most that many types at once; the setting is kept as asked (the API accepts it too),
    and takes effect if the limit is raised. "" when they fit or either is not a number.
    """
    try:
        wanted, limit = int(streams.strip()), int(concurrency.strip())
    except ValueError:
        return ""
    if not 0 < limit < wanted:
        return ""
    types = "type" if limit == 1 else "types"
    return f"pages {limit} {types} at once: each counts against the jobs at once"
