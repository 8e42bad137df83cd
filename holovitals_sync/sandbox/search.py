"""Search: parameter parsing, matching, stable paging and Bundle assembly from bytes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from holovitals_sync.sandbox.data import fhir_instant
from holovitals_sync.sandbox.responses import FhirError
from holovitals_sync.sandbox.store import Record

TOKEN_PARAMS = {"code", "category", "identifier", "status", "clinical-status"}
IGNORED_PARAMS = {"_format", "_pretty", "_total", "_sort", "_elements", "_bundletype"}
_DATE_RE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@dataclass
class Query:
    ids: set[str] | None = None
    patient: str | None = None
    ranges: list[Callable[[str], bool]] = field(default_factory=list)  # on lastUpdated
    dates: list[Callable[[str], bool]] = field(default_factory=list)  # on the clinical date
    date_missing: bool | None = None  # `date:missing=true|false`
    tokens: list[set[str]] = field(default_factory=list)  # AND of ORs
    count: int = 50
    summary_count: bool = False

    def matches(self, rec: Record) -> bool:
        if self.ids is not None and rec.id not in self.ids:
            return False
        if not all(test(rec.last_updated) for test in self.ranges):
            return False
        if self.dates and (rec.date is None or not all(test(rec.date) for test in self.dates)):
            return False
        if self.date_missing is not None and self.date_missing != (rec.date is None):
            return False
        return all(rec.tokens & alternatives for alternatives in self.tokens)


def range_test(op: str, lo: str, hi: str) -> Callable[[str], bool]:
    """Prefix semantics on the value's own range [lo, hi): gt 2026-11-26 means after that day.
    Canonical instants compare correctly as strings."""
    tests: dict[str, Callable[[str], bool]] = {
        "gt": lambda v: v >= hi,
        "sa": lambda v: v >= hi,
        "ge": lambda v: v >= lo,
        "lt": lambda v: v < lo,
        "eb": lambda v: v < lo,
        "le": lambda v: v < hi,
        "eq": lambda v: lo <= v < hi,
        "ne": lambda v: not lo <= v < hi,
    }
    return tests[op]


def date_range(value: str) -> tuple[str, str]:
    """A FHIR date/dateTime at any precision -> [lo, hi) as canonical instant strings."""
    # An unencoded "+" in a query string arrives as a space: read it back as the offset sign.
    m = _DATE_RE.match(value.replace(" ", "+"))
    if not m:
        raise FhirError(400, "date value is not a FHIR date or dateTime")
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        start = datetime(
            int(y),
            int(mo or 1),
            int(d or 1),
            int(hh or 0),
            int(mi or 0),
            int(ss or 0),
            int(float(frac or 0) * 1_000_000) // 1000 * 1000,
        )
    except ValueError:
        raise FhirError(400, "date value is not a valid date") from None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        start -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    start = start.replace(tzinfo=UTC)
    if frac:
        end = start + timedelta(milliseconds=1)
    elif ss or mi:
        end = start + timedelta(seconds=1 if ss else 60)
    elif d:
        end = start + timedelta(days=1)
    elif mo:
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        end = start.replace(year=start.year + 1)
    return fhir_instant(start), fhir_instant(end)


def _patient_value(value: str) -> str:
    ref = value.rsplit("/_history", 1)[0]
    if ref.startswith("http"):
        ref = ref.split("/fhir/", 1)[-1]
    return ref[len("Patient/") :] if ref.startswith("Patient/") else ref


def parse_query(
    pairs: list[tuple[str, str]],
    default_count: int,
    max_count: int,
    lenient: bool = False,
    refuse_over_max: bool = False,
) -> Query:
    """Unknown parameters are a 400 unless the client sent Prefer: handling=lenient; a
    `_count` over the maximum is capped, or refused when `refuse_over_max`."""
    q = Query(count=default_count)
    for name, value in pairs:
        if name in IGNORED_PARAMS:
            continue
        if name == "_count":
            if not value.isdecimal():
                raise FhirError(400, "_count must be a non-negative integer")
            if refuse_over_max and int(value) > max_count:
                raise FhirError(400, f"_count must not exceed {max_count}", "too-costly")
            q.count = min(int(value), max_count)
            q.summary_count = q.summary_count or q.count == 0  # _count=0: total only
        elif name == "_id":
            ids = set(value.split(","))
            q.ids = ids if q.ids is None else q.ids & ids
        elif name in ("patient", "subject"):
            q.patient = _patient_value(value)
        elif name in ("_lastUpdated", "date"):
            op, rest = (value[:2], value[2:]) if value[:2].isalpha() else ("eq", value)
            if op not in ("gt", "ge", "lt", "le", "eq", "ne", "sa", "eb"):
                raise FhirError(400, f"{name} prefix not supported")
            (q.ranges if name == "_lastUpdated" else q.dates).append(
                range_test(op, *date_range(rest))
            )
        elif name == "date:missing":
            if value not in ("true", "false"):
                raise FhirError(400, "date:missing must be true or false")
            q.date_missing = value == "true"
        elif name in TOKEN_PARAMS:
            q.tokens.append({f"{name}:{v}" for v in value.split(",")})
        elif name == "_summary" and value == "count":
            q.summary_count = True
        elif not lenient:
            raise FhirError(400, f"unsupported search parameter '{name.split(':')[0]}'")
    return q


def sort_key(rec: Record) -> tuple[str, str]:
    # (lastUpdated, id): clients can checkpoint on the last entry of a page.
    return rec.last_updated, rec.id


def _entry(base: bytes, rec: Record) -> bytes:
    url = b"%s/%s/%s" % (base, rec.rtype.encode(), rec.id.encode())
    return b'{"fullUrl":"%s","resource":%s,"search":{"mode":"match"}}' % (url, rec.data)


def bundle_page(
    base: str,
    records: list[Record],
    total: int | None,
    links: dict[str, str],
    btype: str = "searchset",
) -> bytes:
    """A Bundle assembled from pre-serialized resources: no parse, no deep copy."""
    head = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": fhir_instant(datetime.now(UTC))},
        "type": btype,
    }
    if total is not None:
        head["total"] = total
    head["link"] = [{"relation": rel, "url": url} for rel, url in links.items()]
    raw = orjson.dumps(head)[:-1]
    entries = b",".join(_entry(base.encode(), r) for r in records)
    return raw + b',"entry":[' + entries + b"]}"


def malformed_page(kind: str) -> bytes:
    """What a broken EHR sends: cut-off JSON or a Bundle with garbage entries."""
    if kind == "bundle":
        return b'{"resourceType":"Bundle","type":"searchset","total":"many","entry":"garbage"}'
    return b'{"resourceType":"Bundle","type":"searchset","entry":[{"fullUrl":"http://'
