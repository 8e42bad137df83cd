"""The HoloVitals side of a synced record: read it, and change HoloVitals' copy.

The platform changes its copy through here (the API's PUT and PATCH). A change replaces the
local body and marks the record dirty; the next outbound or bidirectional job writes it to
the EHR with `If-Match` on the EHR's version, where a change the EHR made meanwhile becomes a
conflict. Changes of our own copy are guarded the same way: each read gives the local copy's
version (`local_etag`), and a write that names an older one is refused (`StaleLocalWrite`),
so two platform writers never overwrite each other unseen.

A delete is asked for the same way (`delete_local`): the record is marked, the next outbound
or bidirectional job sends the delete (`orchestration.outbound`), and the record becomes a
tombstone once the EHR took it. Where the vendor takes no FHIR delete of the type, the
request is refused before anything is stored (`DeleteNotSupported`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import jsonpatch
import orjson
from sqlmodel import Session, select

from ..adapters import ConfigurationError, known_profile
from ..models import EHRConnection, SyncedRecord
from ..models.types import utcnow
from . import audit
from .orchestration.screening import problems


class RecordNotFound(LookupError):
    """No such connection, or no such record on it."""


class StaleLocalWrite(RuntimeError):
    """`If-Match` names a local version that is no longer the current one (HTTP 412)."""


class RecordHeld(RuntimeError):
    """An open conflict holds the record, or it is deleted or marked for deletion (HTTP 409)."""


class DeleteNotSupported(RuntimeError):
    """The connection's vendor takes no FHIR delete of the type (HTTP 409); nothing stored."""


class InvalidEdit(ValueError):
    """The change cannot be applied, or its result is not a resource we can store.

    `problems` lists (element path or None, message) pairs, never values.
    """

    def __init__(self, message: str, problems: list[tuple[str | None, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []


def local_etag(record: SyncedRecord) -> str:
    """The version of HoloVitals' copy, as a weak ETag: it changes with every local change
    (a delete asked for included)."""
    body = orjson.dumps(record.local_copy, option=orjson.OPT_SORT_KEYS)
    if record.local_deleted:
        body += b"\x00deleted"
    return f'W/"{hashlib.sha256(body).hexdigest()[:20]}"'


def find(session: Session, connection_id: int, resource_type: str, remote_id: str) -> SyncedRecord:
    if session.get(EHRConnection, connection_id) is None:
        raise RecordNotFound(f"no connection {connection_id}")
    row = session.exec(
        select(SyncedRecord).where(
            SyncedRecord.connection_id == connection_id,
            SyncedRecord.resource_type == resource_type,
            SyncedRecord.remote_id == remote_id,
        )
    ).first()
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
        raise InvalidEdit(
            "resourceType and id cannot change",
            [("resourceType", "must stay as it is"), ("id", "must stay as it is")],
        )
    found = problems(body)
    if found:
        raise InvalidEdit("the result is not a resource we can store", found)
    return body


def replace_local(
    session: Session, record: SyncedRecord, body: Any, *, if_match: str, actor: audit.Actor
) -> SyncedRecord:
    """Make `body` HoloVitals' copy of the record and mark it for writing back.

    Raises:
        StaleLocalWrite: `if_match` is not the current local version.
        RecordHeld: an open conflict holds the record, or it is (marked) deleted.
        InvalidEdit: the body is not this record, or not a resource we can store.
    """
    _check_changeable(record, if_match)
    new = _checked(record, body)
    if new == record.local_copy:
        return record  # nothing changed: not dirty, nothing to write back
    record.local_body = new
    record.dirty = True
    record.updated_at = utcnow()
    session.add(record)
    audit.record(
        session,
        actor=actor,
        action="record.update_local",
        target_type="record",
        target_id=record.id,
        details={"connection_id": record.connection_id, "resource_type": record.resource_type},
    )
    session.flush()
    return record


def _check_changeable(record: SyncedRecord, if_match: str) -> None:
    if if_match != local_etag(record):
        raise StaleLocalWrite("the record changed since it was read; read it again")
    if record.conflict_pending:
        raise RecordHeld("an open conflict holds this record; resolve it first")
    if record.deleted:
        raise RecordHeld("the record is deleted at the EHR (a tombstone); it cannot change")
    if record.local_deleted:
        raise RecordHeld(
            "the record is marked for deletion; the next outbound or "
            "bidirectional job deletes it at the EHR"
        )


def delete_refusal(connection: EHRConnection, resource_type: str) -> str | None:
    """Why the connection's vendor can never take a FHIR delete of the type, or None.

    None also where the server declares what it takes (generic servers): the outbound job
    reads its CapabilityStatement and records a refusal per record there.
    """
    try:
        profile = known_profile(
            connection.vendor.value,
            {k: str(v) for k, v in (connection.vendor_params or {}).items()},
        )
    except ConfigurationError as exc:
        return str(exc)
    return None if profile is None else profile.write_refusal(resource_type, "delete")


def delete_local(
    session: Session, record: SyncedRecord, *, if_match: str, actor: audit.Actor
) -> SyncedRecord:
    """Delete HoloVitals' copy: mark the record for a delete at the EHR.

    The next outbound or bidirectional job sends `DELETE` with `If-Match` on the EHR's
    version; the record becomes a tombstone when the EHR took it (or had it no more), and a
    conflict when the EHR changed it meanwhile. Asking again changes nothing.

    Raises:
        StaleLocalWrite: `if_match` is not the current local version.
        RecordHeld: an open conflict holds the record, or it is a tombstone already.
        DeleteNotSupported: the vendor takes no FHIR delete of the type (nothing stored).
    """
    if record.local_deleted and if_match == local_etag(record) and not record.conflict_pending:
        return record  # asked already: the same answer, nothing stored twice
    _check_changeable(record, if_match)
    connection = session.get(EHRConnection, record.connection_id)
    refusal = delete_refusal(connection, record.resource_type)
    if refusal is not None:
        raise DeleteNotSupported(refusal)
    record.local_deleted, record.dirty = True, True
    record.local_deleted_at = record.updated_at = utcnow()
    record.local_deleted_by = actor.name[:200]
    session.add(record)
    audit.record(
        session,
        actor=actor,
        action="record.delete_local",
        target_type="record",
        target_id=record.id,
        details={"connection_id": record.connection_id, "resource_type": record.resource_type},
    )
    session.flush()
    return record
