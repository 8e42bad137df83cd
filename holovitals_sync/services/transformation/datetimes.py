"""FHIR date/dateTime/instant normalisation to UTC; partial dates stay as precise as sent."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

# YYYY, YYYY-MM, YYYY-MM-DD: no time of day, so there is nothing to shift.
_PARTIAL = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$"
)


class UnparseableDate(ValueError):
    """The value is not a FHIR date, dateTime or instant."""


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def normalise(value: str, *, assume_timezone: str = "UTC", style: str = "offset") -> str:
    """`value` as a UTC date-time ("+00:00" or "Z"), or unchanged if it is a partial date.

    Fractional seconds keep the precision they arrived with (up to microseconds).

    Raises:
        UnparseableDate: the value is neither a partial date nor a date-time.
    """
    if _PARTIAL.match(value):
        return value
    match = _DATETIME.match(value)
    if match is None:
        raise UnparseableDate("not a FHIR date or dateTime")
    day, clock, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]
    if zone in ("Z", "+00:00") and len(clock) == 8 and _valid(day, clock):
        # Already UTC with seconds: only the suffix may change (no parse on the hot path).
        return f"{day}T{clock}{fraction}{'Z' if style == 'z' else '+00:00'}"
    try:
        parsed = datetime.fromisoformat(f"{day}T{clock}{fraction}{_offset(zone)}")
    except ValueError:
        raise UnparseableDate("not a valid calendar date or time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(assume_timezone))
    utc = parsed.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if len(fraction) > 1:
        text += f".{utc.microsecond:06d}"[: len(fraction)]
    return text + ("Z" if style == "z" else "+00:00")


def _valid(day: str, clock: str) -> bool:
    try:
        date.fromisoformat(day)  # C-fast calendar check
    except ValueError:
        return False
    return int(clock[:2]) < 24 and int(clock[3:5]) < 60 and int(clock[6:8]) <= 60


def _offset(zone: str | None) -> str:
    if not zone:
        return ""
    if zone == "Z":
        return "+00:00"
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
