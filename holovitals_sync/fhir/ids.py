"""Validation of resource types and ids, and formatting of FHIR instants.

Types and ids are checked before they go into a URL path, so a value from a remote body can
never rewrite the path (`../`, `?`, `#`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_TYPE_RE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# A path segment we build: a type, an id, or an operation/path word (`$export`, `_history`,
# `.well-known`); never a dot segment.
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9\-._$]{1,200}$")
FHIR_ID_PATTERN = _ID_RE.pattern


class InvalidId(ValueError):
    """A type, id or path segment that may not go into a URL (the value is not repeated:
    it may be an attacker's, or carry PHI)."""


def check_type(resource_type: str) -> str:
    """Refuse anything that is not a plain resource type name (no path injection)."""
    if not isinstance(resource_type, str) or not _TYPE_RE.match(resource_type):
        raise InvalidId("not a FHIR resource type")
    return resource_type


def check_id(resource_id: str) -> str:
    """Refuse anything that is not a FHIR logical id (no path injection)."""
    if not isinstance(resource_id, str) or not _ID_RE.match(resource_id):
        raise InvalidId("not a FHIR id ([A-Za-z0-9-.], at most 64)")
    return resource_id


def check_segment(part: str) -> str:
    """Refuse a path segment that could leave its place: `..`, `.`, `/`, `?`, `#`, `%`."""
    if not isinstance(part, str) or part in (".", "..") or not _SEGMENT_RE.match(part):
        raise InvalidId("not a URL path segment this client builds")
    return part


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
