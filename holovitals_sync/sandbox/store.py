"""In-memory versioned FHIR store.

Each version is an immutable Record holding the pre-serialized JSON bytes plus the few
fields searches need, so a search page is built by joining bytes (no per-request copies)
and a search snapshot is a plain list of Records that later writes cannot disturb.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from holovitals_sync.sandbox.data import fhir_instant

Resource = dict[str, Any]
PATIENT_REF_FIELDS = ("subject", "patient")


class VersionConflict(Exception):
    """If-Match named a version that is no longer current."""

    def __init__(self, current: int) -> None:
        super().__init__(f"current version is {current}")
        self.current = current


@dataclass(frozen=True, slots=True)
class Record:
    rtype: str
    id: str
    version: int
    last_updated: str
    patient: str | None
    tokens: frozenset[str]
    data: bytes
    deleted: bool = False
    date: str | None = None  # the clinical date (`date` search), canonical instant

    def resource(self) -> Resource:
        return orjson.loads(self.data)


def _codings(value: Any) -> Iterator[tuple[str, str]]:
    for cc in value if isinstance(value, list) else [value]:
        if isinstance(cc, dict):
            for coding in cc.get("coding") or []:
                yield coding.get("system") or "", coding.get("code") or ""


def index_tokens(res: Resource) -> frozenset[str]:
    """Search tokens: "code:sys|c", "code:c", "category:c", "identifier:sys|v", ..."""
    out: set[str] = set()
    for param, field in (
        ("code", "code"),
        ("code", "vaccineCode"),
        ("code", "medicationCodeableConcept"),
        ("category", "category"),
        ("clinical-status", "clinicalStatus"),
    ):
        for system, code in _codings(res.get(field)):
            out.update((f"{param}:{system}|{code}", f"{param}:{code}"))
    for ident in res.get("identifier") or []:
        system, value = ident.get("system") or "", ident.get("value") or ""
        out.update((f"identifier:{system}|{value}", f"identifier:{value}"))
    if isinstance(res.get("status"), str):
        out.add(f"status:{res['status']}")
    return frozenset(sys.intern(tok) for tok in out)  # the same codes recur in every patient


def patient_of(res: Resource) -> str | None:
    if res.get("resourceType") == "Patient":
        return res.get("id")
    for field in PATIENT_REF_FIELDS:
        ref = (res.get(field) or {}).get("reference") if isinstance(res.get(field), dict) else None
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref[len("Patient/") :]
    return None


DATE_FIELDS = (
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveInstant",
    "period",
    "onsetDateTime",
    "occurrenceDateTime",
    "authoredOn",
    "recordedDate",
)


def clinical_date(res: Resource) -> str | None:
    """The canonical start instant of the resource's clinical date, if it has one."""
    from holovitals_sync.sandbox.responses import FhirError
    from holovitals_sync.sandbox.search import date_range

    for name in DATE_FIELDS:
        value = res.get(name)
        if isinstance(value, dict):
            value = value.get("start")
        if isinstance(value, str):
            try:
                return date_range(value)[0]
            except FhirError:
                return None
    return None


def make_record(res: Resource, deleted: bool = False) -> Record:
    meta = res["meta"]
    # orjson's bytes keep a ~4 KiB buffer; an exact-size copy cuts resident memory ~6x.
    raw = bytes(memoryview(orjson.dumps(res)))
    return Record(
        res["resourceType"],
        res["id"],
        int(meta["versionId"]),
        meta["lastUpdated"],
        patient_of(res),
        index_tokens(res),
        raw,
        deleted,
        clinical_date(res),
    )


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._current: dict[str, dict[str, Record]] = {}
        self._older: dict[tuple[str, str], list[Record]] = {}  # only ids with >1 version
        self._by_patient: dict[str, dict[str, dict[str, None]]] = {}  # ordered sets
        self._last = datetime(2000, 1, 1, tzinfo=UTC)
        self._counter = 0
        self._undo: list[tuple[str, str, Record | None]] | None = None

    # ---- reading -------------------------------------------------------------------------
    def types(self) -> list[str]:
        return sorted(self._current)

    def get(self, rtype: str, rid: str) -> Record | None:
        return self._current.get(rtype, {}).get(rid)

    def history(self, rtype: str, rid: str) -> list[Record]:
        """All versions, newest first."""
        with self.lock:
            cur = self.get(rtype, rid)
            if cur is None:
                return []
            return [cur, *reversed(self._older.get((rtype, rid), []))]

    def type_history(self, rtype: str, since: datetime | None) -> list[Record]:
        """Every version of every record of a type written at or after `since`, newest
        first (deletes included: a deleted record's newest version is its delete)."""
        with self.lock:
            versions = [
                v
                for rid, cur in self._current.get(rtype, {}).items()
                for v in (cur, *self._older.get((rtype, rid), []))
            ]
        if since is not None:
            versions = [v for v in versions if _instant(v.last_updated) >= since]
        return sorted(versions, key=lambda v: (v.last_updated, v.version), reverse=True)

    def vread(self, rtype: str, rid: str, vid: int) -> Record | None:
        return next((r for r in self.history(rtype, rid) if r.version == vid), None)

    def deleted_since(self, rtype: str, since: str) -> list[Record]:
        """Records of a type deleted after `since` (their newest version is the delete)."""
        with self.lock:
            return [
                r
                for r in self._current.get(rtype, {}).values()
                if r.deleted and r.last_updated > since
            ]

    def candidates(self, rtype: str, patient: str | None = None) -> list[Record]:
        """Live (not deleted) records of a type, optionally of one patient; a copy."""
        with self.lock:
            by_id = self._current.get(rtype, {})
            if patient is None:
                recs: Iterable[Record] = by_id.values()
            else:
                recs = (by_id[i] for i in self._by_patient.get(rtype, {}).get(patient, ()))
            return [r for r in recs if not r.deleted]

    def watermark(self) -> str:
        """lastUpdated of the newest write; everything changed later sorts after it."""
        with self.lock:
            return fhir_instant(self._last)

    # ---- writing -------------------------------------------------------------------------
    def load(self, resources: Iterable[Resource]) -> None:
        """Initial data: stored as given (their meta is already set)."""
        with self.lock:
            for res in resources:
                rec = make_record(res)
                self._put(rec)
                last = datetime.fromisoformat(rec.last_updated.replace("Z", "+00:00"))
                self._last = max(self._last, last)

    def next_id(self, prefix: str) -> str:
        with self.lock:
            self._counter += 1
            return f"{prefix}-n{self._counter:06d}"

    def _now(self) -> datetime:
        # Strictly increasing instants: `_lastUpdated=gt<watermark>` then finds exactly the
        # writes made after the watermark, even several within one millisecond.
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last = max(now, self._last + timedelta(milliseconds=1))
        return self._last

    def _put(self, rec: Record) -> None:
        by_id = self._current.setdefault(rec.rtype, {})
        prev = by_id.get(rec.id)
        if self._undo is not None:
            self._undo.append((rec.rtype, rec.id, prev))
        if prev is not None:
            self._older.setdefault((rec.rtype, rec.id), []).append(prev)
        by_id[rec.id] = rec
        if rec.patient:
            self._by_patient.setdefault(rec.rtype, {}).setdefault(rec.patient, {})[rec.id] = None

    def _write(self, res: Resource, version: int, deleted: bool = False) -> Record:
        meta = dict(res.get("meta") or {})
        meta.update(versionId=str(version), lastUpdated=fhir_instant(self._now()))
        res = {**res, "meta": meta}
        rec = make_record(res, deleted)
        self._put(rec)
        return rec

    def create(self, res: Resource, rid: str | None = None) -> Record:
        with self.lock:
            rtype = res["resourceType"]
            rid = rid or self.next_id(rtype.lower()[:4])
            while rid in self._current.get(rtype, {}):
                rid = self.next_id(rtype.lower()[:4])
            return self._write({**res, "id": rid}, 1)

    def update(self, res: Resource, if_match: int | None = None) -> tuple[Record, bool]:
        """Returns (record, created). Raises VersionConflict on a stale If-Match."""
        with self.lock:
            cur = self.get(res["resourceType"], res["id"])
            if if_match is not None and (cur is None or cur.version != if_match):
                raise VersionConflict(cur.version if cur else 0)
            if cur is None:
                return self._write(res, 1), True
            return self._write(res, cur.version + 1), False

    def put_raw(self, rtype: str, rid: str, body: Any) -> Record:
        """Serve `body` as it is under (rtype, rid), however broken: fault tests seed
        resources of wrong types, unknown kinds or with no id this way. Only a JSON
        object's `meta` gets the version and lastUpdated the search needs."""
        with self.lock:
            cur = self.get(rtype, rid)
            version = cur.version + 1 if cur else 1
            instant = fhir_instant(self._now())
            if isinstance(body, dict):
                meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
                body = {**body, "meta": {**meta, "versionId": str(version), "lastUpdated": instant}}
            patient = patient_of(body) if isinstance(body, dict) else None
            rec = Record(
                rtype,
                rid,
                version,
                instant,
                patient if isinstance(patient, str) else None,
                frozenset(),
                bytes(memoryview(orjson.dumps(body))),
            )
            self._put(rec)
            return rec

    def delete(self, rtype: str, rid: str, if_match: int | None = None) -> Record | None:
        """The delete's version, or None when there is nothing (left) to delete. Raises
        VersionConflict when `if_match` names another version than the live one."""
        with self.lock:
            cur = self.get(rtype, rid)
            if cur is None or cur.deleted:
                return None
            if if_match is not None and cur.version != if_match:
                raise VersionConflict(cur.version)
            return self._write(cur.resource(), cur.version + 1, deleted=True)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing: writes inside are undone if the block raises."""
        with self.lock:
            self._undo = []
            try:
                yield
            except BaseException:
                self._rollback(self._undo)
                raise
            finally:
                self._undo = None

    def _rollback(self, undo: list[tuple[str, str, Record | None]]) -> None:
        for rtype, rid, prev in reversed(undo):
            if prev is None:
                rec = self._current[rtype].pop(rid)
                if rec.patient:
                    self._by_patient[rtype][rec.patient].pop(rid, None)
            else:
                self._current[rtype][rid] = prev
                older = self._older[(rtype, rid)]
                older.pop()
                if not older:
                    del self._older[(rtype, rid)]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
