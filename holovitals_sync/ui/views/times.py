"""How the dashboard prints a time: one formatter for every page (all times are UTC).

Tables whose column heading says "(UTC)" leave the zone out of each cell; text that stands
alone (a connection's next run, a feed's last message) says it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ...models.types import utcnow

DAY = "%Y-%m-%d"


def when(
    value: datetime | None,
    *,
    precision: Literal["minute", "second"] = "second",
    zone: bool = False,
    empty: str = "—",
) -> str:
    """`2026-12-06 09:41:07` (or `... 09:41`, `... UTC`); `empty` for no time."""
    if value is None:
        return empty
    text = value.strftime(f"{DAY} %H:%M:%S" if precision == "second" else f"{DAY} %H:%M")
    return f"{text} UTC" if zone else text


def clock(value: datetime | None, now: datetime | None = None) -> str:
    """Compact, for the busy jobs table: the time only today, the date and minute before."""
    if value is None:
        return "—"
    today = (now or utcnow()).date()
    return when(value)[11:] if value.date() == today else when(value, precision="minute")
