"""Validation of resource types and ids, and formatting of FHIR instants.

Types and ids are checked before they go into a URL path, so a value from a remote body can
never rewrite the path (`../`, `?`, `#`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_TYPE_RE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def check_type(resource_type: str) -> str:
    """Refuse anything that is not a plain resource type name (no path injection)."""
    if not _TYPE_RE.match(resource_type):
        raise ValueError(f"invalid resource type {resource_type!r}")
    return resource_type


def check_id(resource_id: str) -> str:
    """Refuse anything that is not a FHIR logical id (no path injection)."""
    if not _ID_RE.match(resource_id):
        raise ValueError(f"invalid resource id {resource_id!r}")
    return resource_id


def fhir_instant(moment: datetime) -> str:
    """Format an aware datetime as a FHIR instant in UTC, milliseconds truncated.

    Args:
        moment: A timezone-aware datetime.

    Returns:
        e.g. `2026-11-26T03:00:00.123Z`.
    """
    if moment.tzinfo is None:
        raise ValueError("cursor must be timezone-aware (UTC)")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
