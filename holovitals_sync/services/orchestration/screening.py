"""A cheap screen for resources an EHR sends that nothing downstream can use.

Full FHIR model validation is too slow for every record (see pipeline.STRUCTURAL), yet an
EHR does send resources of unknown types, without ids, with values of the wrong JSON type,
impossible dates, megabyte strings or nesting hundreds of levels deep. Those are caught
here in one pass, each becomes a record error (element path and a fixed message: never the
value), and they are not stored in any validation mode; the rest of the batch goes on.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import orjson

from ..validation.issues import Layer, ValidationIssue

MAX_DEPTH = 32
MAX_STRING = 1_048_576  # characters; an Attachment larger than this belongs in a Binary
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# FHIR R4 date, dateTime and instant (the regexes of the specification, datatypes page).
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_DATETIME = re.compile(
    r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2}))?)?)?"
)
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
# Top-level elements whose JSON type is the same in every resource type that has them.
_KINDS: dict[str, type] = {
    "meta": dict,
    "text": dict,
    "status": str,
    "extension": list,
    "contained": list,
}
# And in the clinical types the adapters sync (Organization.name is a string, say, and
# Composition.identifier a single object: these are not universal).
_CLINICAL = frozenset(
    {
        "Patient",
        "Encounter",
        "Observation",
        "Condition",
        "MedicationRequest",
        "AllergyIntolerance",
        "Immunization",
        "DiagnosticReport",
        "Procedure",
    }
)
_CLINICAL_KINDS: dict[str, type] = {
    "gender": str,
    "intent": str,
    "subject": dict,
    "patient": dict,
    "encounter": dict,
    "code": dict,
    "class": dict,
    "clinicalStatus": dict,
    "verificationStatus": dict,
    "vaccineCode": dict,
    "medicationCodeableConcept": dict,
    "identifier": list,
    "name": list,
    "telecom": list,
    "address": list,
    "category": list,
    "active": bool,
}
_ALL_KINDS = {**_KINDS, **_CLINICAL_KINDS}
_DATES = {
    "birthDate": _DATE,
    "recordedDate": _DATETIME,
    "authoredOn": _DATETIME,
    "effectiveDateTime": _DATETIME,
    "onsetDateTime": _DATETIME,
    "occurrenceDateTime": _DATETIME,
    "issued": _INSTANT,
}
_PERIOD_NAMES = frozenset({"effectivePeriod", "period", "onsetPeriod"})


@dataclass(slots=True)
class Rejected:
    """Resources the screen turned away, and why."""

    count: int = 0
    issues: list[ValidationIssue] = field(default_factory=list)


@lru_cache(maxsize=512)
def known_type(name: str) -> bool:
    """Whether `name` is a FHIR R4 resource type (the fhir.resources model names)."""
    from fhir.resources import get_fhir_model_class

    try:
        model = get_fhir_model_class(name)
    except (ValueError, KeyError, ImportError):
        return False
    return model.__name__ == name and name[:1].isupper()


def anonymous_tag(resource: Any) -> str:
    """A short digest telling apart resources that have no usable id (no content, no PHI)."""
    try:
        raw = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        raw = repr(resource).encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def _valid_date(value: str, pattern: re.Pattern[str]) -> bool:
    if not pattern.fullmatch(value):
        return False
    try:  # the pattern accepts month 13 or 30 February: the calendar does not
        if len(value) >= 10:
            date.fromisoformat(value[:10])
        elif len(value) == 7 and not 1 <= int(value[5:7]) <= 12:
            return False
        if "T" in value:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _suspect(resource: dict[str, Any]) -> bool:
    """Whether anything is too deep or too long (fast: no paths built on the hot path)."""
    try:
        raw = orjson.dumps(resource)
    except orjson.JSONEncodeError:  # nested past orjson's own limit, say
        return _suspect_walk(resource)
    # Most resources are settled by their serialised form (in C, ~1 us, a third of the
    # walk): a string can be no longer than the whole, nor nesting deeper than the count
    # of opening brackets (those inside strings only make the count safer).
    if len(raw) <= MAX_STRING and raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH:
        return False
    return _suspect_walk(resource)


def _suspect_walk(resource: dict[str, Any]) -> bool:
    stack: list[tuple[Any, int]] = [(resource, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        for item in value.values() if type(value) is dict else value:
            kind = type(item)
            if kind is str:
                if len(item) > MAX_STRING:
                    return True
            elif kind is dict or kind is list:
                stack.append((item, depth + 1))
    return False


def _walk(value: Any, path: str, depth: int) -> Iterator[tuple[str, str]]:
    """(path, problem) for every string too long and the first level too deep."""
    if depth > MAX_DEPTH:
        yield path, f"nested deeper than {MAX_DEPTH} levels"
        return
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            yield path, f"string longer than {MAX_STRING} characters"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key)[:64], depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]", depth + 1)


def _element_problems(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    kinds = _ALL_KINDS if resource["resourceType"] in _CLINICAL else _KINDS
    present = resource.keys()
    for name in present & kinds.keys():
        if not isinstance(resource[name], kinds[name]):
            yield name, "wrong JSON type for this element"
    for name in present & _DATES.keys():
        value = resource[name]
        if not (isinstance(value, str) and _valid_date(value, _DATES[name])):
            yield name, "not a valid FHIR date/time"
    for name in present & _PERIOD_NAMES:
        period = resource[name]
        for end in ("start", "end"):
            value = period.get(end) if isinstance(period, dict) else None
            if value is not None and not (isinstance(value, str) and _valid_date(value, _DATETIME)):
                yield f"{name}.{end}", "not a valid FHIR date/time"
    updated = (
        (resource.get("meta") or {}).get("lastUpdated")
        if isinstance(resource.get("meta"), dict)
        else None
    )
    if updated is not None and not (isinstance(updated, str) and _valid_date(updated, _INSTANT)):
        yield "meta.lastUpdated", "not a valid FHIR instant"


def problems(resource: Any) -> list[tuple[str | None, str]]:
    """Why a resource cannot be used, as (element path, fixed message); empty when fine."""
    if not isinstance(resource, dict):
        return [(None, "resource is not a JSON object")]
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if not isinstance(rtype, str) or not known_type(rtype):
        return [("resourceType", "unknown or missing resource type")]
    found: list[tuple[str | None, str]] = []
    if not isinstance(rid, str) or not _ID.fullmatch(rid):
        found.append(("id", "missing or invalid id"))
    found += list(_element_problems(resource))
    if _suspect(resource):
        found += list(_walk(resource, "", 0))[:5]
    return found


def _identity(resource: Any) -> tuple[str, str | None]:
    if not isinstance(resource, dict):
        return "Unknown", None
    rtype, rid = resource.get("resourceType"), resource.get("id")
    usable_type = isinstance(rtype, str) and re.fullmatch(r"[A-Za-z]{1,64}", rtype)
    usable_id = isinstance(rid, str) and _ID.fullmatch(rid)
    return (rtype if usable_type else "Unknown"), (rid if usable_id else None)


def screen(resources: Sequence[Any]) -> tuple[list[dict[str, Any]], Rejected]:
    """Split a batch into resources worth processing and the rejected ones' errors."""
    usable: list[dict[str, Any]] = []
    rejected = Rejected()
    for resource in resources:
        found = problems(resource)
        if not found:
            usable.append(resource)
            continue
        rejected.count += 1
        rtype, rid = _identity(resource)
        # No usable id: a digest tells two such resources apart (and keeps replays equal).
        suffix = "" if rid else f" (resource {anonymous_tag(resource)})"
        rejected.issues += [
            ValidationIssue(rtype, rid, path, message + suffix, Layer.STRUCTURE)
            for path, message in found
        ]
    return usable, rejected
