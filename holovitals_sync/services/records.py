"""The HoloVitals side of a synced record: read it, and change HoloVitals' copy.

The platform changes its copy through here (the API's PUT and PATCH). A change replaces the
local body and marks the record dirty; the next outbound or bidirectional job writes it to
the EHR with `If-Match` on the EHR's version, where a change the EHR made meanwhile becomes a
conflict. Changes of our own copy are guarded the same way: each read gives the local copy's
version (`local_etag`), and a write that names an older one is refused (`StaleLocalWrite`),
so two platform writers never overwrite each other unseen.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jsonpatch
import orjson
from sqlmodel import Session, select

from ..models import EHRConnection, SyncedRecord
from ..models.types import utcnow
from . import audit
from .orchestration.screening import problems


class RecordNotFound(LookupError):
    """No such connection, or no such record on it."""


class StaleLocalWrite(RuntimeError):
    """`If-Match` names a local version that is no longer the current one (HTTP 412)."""


class RecordHeld(RuntimeError):
    """An open conflict holds the record: its resolution decides the copy (HTTP 409)."""


class InvalidEdit(ValueError):
    """The change cannot be applied, or its result is not a resource we can store.

    `problems` lists (element path or None, message) pairs, never values.
    """

    def __init__(self, message: str, problems: list[tuple[str | None, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []


def local_etag(record: SyncedRecord) -> str:
    """The version of HoloVitals' copy, as a weak ETag: it changes with every local change."""
    body = orjson.dumps(record.local_copy, option=orjson.OPT_SORT_KEYS)
    return f'W/"{hashlib.sha256(body).hexdigest()[:20]}"'


def find(session: Session, connection_id: int, resource_type: str,
         remote_id: str) -> SyncedRecord:
    if session.get(EHRConnection, connection_id) is None:
        raise RecordNotFound(f"no connection {connection_id}")
    row = session.exec(select(SyncedRecord).where(
        SyncedRecord.connection_id == connection_id,
        SyncedRecord.resource_type == resource_type,
        SyncedRecord.remote_id == remote_id)).first()
    if row is None:
        raise RecordNotFound(f"no {resource_type} {remote_id} on connection {connection_id}")
    return row


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch: objects merge key by key, null removes, the rest replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: Any) -> Any:
    """RFC 6902 JSON Patch (the `jsonpatch` library); a failing operation is an InvalidEdit."""
    if not isinstance(operations, list):
        raise InvalidEdit("a JSON Patch is a list of operations")
    try:
        return jsonpatch.JsonPatch(operations).apply(target)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
            KeyError, IndexError) as exc:  # fmt: skip
        raise InvalidEdit(f"the patch cannot be applied: {type(exc).__name__}") from None


def _checked(record: SyncedRecord, body: Any) -> dict[str, Any]:
    """The new local body, if it is still this record and a resource we can store."""
    if not isinstance(body, dict):
        raise InvalidEdit("the result is not a JSON object")
    if body.get("resourceType") != record.resource_type or body.get("id") != record.remote_id:
        raise InvalidEdit("resourceType and id cannot change",
                          [("resourceType", "must stay as it is"), ("id", "must stay as it is")])
    found = problems(body)
    if found:
        raise InvalidEdit("the result is not a resource we can store", found)
    return body


def replace_local(session: Session, record: SyncedRecord, body: Any, *, if_match: str,
                  actor: audit.Actor) -> SyncedRecord:
    """Make `body` HoloVitals' copy of the record and mark it for writing back.

    Raises:
        StaleLocalWrite: `if_match` is not the current local version.
        RecordHeld: an open conflict holds the record.
        InvalidEdit: the body is not this record, or not a resource we can store.
    """
    if if_match != local_etag(record):
        raise StaleLocalWrite("the record changed since it was read; read it again")
    if record.conflict_pending:
        raise RecordHeld("an open conflict holds this record; resolve it first")
    new = _checked(record, body)
    if new == record.local_copy:
        return record  # nothing changed: not dirty, nothing to write back
    record.local_body = new
    record.dirty = True
    record.updated_at = utcnow()
    session.add(record)
    audit.record(session, actor=actor, action="record.update_local", target_type="record",
                 target_id=record.id, details={"connection_id": record.connection_id,
                                               "resource_type": record.resource_type})
    session.flush()
    return record
