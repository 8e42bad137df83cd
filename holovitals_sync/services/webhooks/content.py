"""Clinical content for subscriptions that opted in (`include_content`): the stored resource.

A delivery row holds ids only, whatever the subscription wants. When an attempt runs for a
subscription that opted in and the event is about a stored record, the body gains
`resource`: the FHIR resource as HoloVitals holds it at send time (its own copy, else the
EHR's), or null when HoloVitals no longer holds it (deleted). The content is read here, at
send time, and is never written to the delivery, its log or any log line.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from ...models import Conflict, SyncedRecord

RESOURCE_KEY = "resource"


def _record(session: Session, refs: dict[str, Any]) -> SyncedRecord | None | bool:
    """The record the event is about; None: about one no longer held; False: about none."""
    if isinstance(refs.get("record_id"), int):
        return session.get(SyncedRecord, refs["record_id"])
    cid, rtype, rid = refs.get("connection_id"), refs.get("resource_type"), refs.get("resource_id")
    if isinstance(cid, int) and rtype and rid:
        return session.exec(
            select(SyncedRecord).where(
                SyncedRecord.connection_id == cid,
                SyncedRecord.resource_type == rtype,
                SyncedRecord.remote_id == str(rid),
            )
        ).first()
    if isinstance(refs.get("conflict_id"), int):  # conflict.detected names the conflict only
        conflict = session.get(Conflict, refs["conflict_id"])
        return session.get(SyncedRecord, conflict.record_id) if conflict else None
    return False


def content_for(session: Session, event_ref: dict[str, Any]) -> dict[str, Any]:
    """The keys an opted-in body gains: {"resource": body or None}, or {} when the event
    is not about a stored resource (sync runs, alerts, test events)."""
    record = _record(session, event_ref)
    if record is False:
        return {}
    if record is None or record.deleted:
        return {RESOURCE_KEY: None}
    return {RESOURCE_KEY: record.local_copy}
