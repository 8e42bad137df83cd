"""What an inbound webhook is about, read from its body: ids only, never the payload.

Two shapes: FHIR Subscriptions R5-backport notifications for R4 (a `history` Bundle whose
first entry is the subscription status: a Parameters resource in R4, a SubscriptionStatus in
R4B) and vendor event JSON (`eventId`, `eventType`, `resourceType`, `resourceId`, `patient`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

# Notification types that carry no change: acknowledged and counted, nothing to sync.
HOUSEKEEPING = frozenset({"handshake", "heartbeat", "query-status", "query-event"})
# Vendor event types that announce a delete: "observation.deleted", "Patient.delete", ...
_DELETE_WORD = re.compile(r"delet|remov|purg", re.IGNORECASE)


class MalformedEvent(ValueError):
    """The body is not a notification or vendor event we understand."""


@dataclass(frozen=True)
class EventInfo:
    """The ids an inbound event is stored with (the body itself is dropped)."""

    key: str  # replay key: the sender's event/bundle id, else a digest of the body
    source: str
    event_type: str
    resource_type: str | None = None
    resource_id: str | None = None
    patient_ref: str | None = None
    events_since: int | None = None  # the sender's running count (subscription notifications)
    # Read the focus after the sync: the event says it was deleted, or names it without its
    # content (id-only), so only a read tells whether it still exists (404/410 tombstones).
    recheck: bool = False


def _short(value: Any, limit: int = 200) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None


def _split_ref(reference: str | None) -> tuple[str | None, str | None]:
    if not reference:
        return None, None
    parts = reference.rstrip("/").split("/")
    # Absolute URLs and `_history` suffixes: keep the Type/id pair.
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) < 2:
        return None, None
    return parts[-2], parts[-1]


def _patient_of(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient" and resource.get("id"):
        return f"Patient/{resource['id']}"
    for field in ("subject", "patient"):
        ref = (resource.get(field) or {}).get("reference")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref
    return None


def _status_params(status: dict[str, Any]) -> dict[str, Any]:
    """R4 Parameters -> {name: value-or-parts}; an R4B SubscriptionStatus is already flat."""
    if status.get("resourceType") == "SubscriptionStatus":
        return status
    params: dict[str, Any] = {}
    for param in status.get("parameter") or []:
        value = next((v for k, v in param.items() if k.startswith("value")), None)
        params.setdefault(param.get("name"), param.get("part") if value is None else value)
    return params


def _events_since(params: dict[str, Any]) -> int | None:
    """`events-since-subscription-start` (R4: an int64 as a string; R4B: a number)."""
    value = params.get(
        "events-since-subscription-start", params.get("eventsSinceSubscriptionStart")
    )
    try:
        count = int(value) if isinstance(value, str | int) else None
    except ValueError:
        return None
    return count if count is not None and count >= 0 else None


def _focus(params: dict[str, Any]) -> str | None:
    events = params.get("notification-event") or params.get("notificationEvent") or []
    if isinstance(events, list) and events and isinstance(events[0], dict):
        first = events[0]
        if "focus" in first:  # R4B SubscriptionStatus
            return (first.get("focus") or {}).get("reference")
        for part in events if "name" in first else []:
            if part.get("name") == "focus":
                return (part.get("valueReference") or {}).get("reference")
    return None


def _from_bundle(bundle: dict[str, Any], digest: str) -> EventInfo:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise MalformedEvent("Bundle.entry is not a list of entries")
    status = (entries[0].get("resource") if entries else None) or {}
    if not isinstance(status, dict):
        raise MalformedEvent("the first entry's resource is not a resource")
    if status.get("resourceType") not in ("Parameters", "SubscriptionStatus"):
        raise MalformedEvent("notification bundle without a subscription status")
    params = _status_params(status)
    kind = params.get("type")
    if not isinstance(kind, str):
        raise MalformedEvent("notification without a type")
    focus, resource, method = _focus(params), None, None
    if len(entries) > 1:
        entry = entries[1]
        resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else None
        request = entry.get("request") or {}
        method = request.get("method")
        focus = focus or request.get("url") or entry.get("fullUrl")
    rtype, rid = _split_ref(focus)
    if resource is not None:
        rtype, rid = resource.get("resourceType", rtype), resource.get("id", rid)
    patient = _patient_of(resource) if resource else None
    if patient is None and rtype == "Patient" and rid:
        patient = f"Patient/{rid}"
    key = f"bundle:{bundle['id']}" if bundle.get("id") else digest
    return EventInfo(
        key=key[:200],
        source="fhir_subscription",
        event_type=kind[:64],
        resource_type=_short(rtype, 64),
        resource_id=_short(rid),
        patient_ref=_short(patient),
        events_since=_events_since(params),
        recheck=bool(rid) and (method == "DELETE" or resource is None),
    )


def _from_vendor(event: dict[str, Any], digest: str) -> EventInfo:
    kind = event.get("eventType")
    if not isinstance(kind, str):
        raise MalformedEvent("vendor event without eventType")
    patient = event.get("patient")
    if isinstance(patient, str) and "/" not in patient:
        patient = f"Patient/{patient}"
    key = f"event:{event['eventId']}" if event.get("eventId") else digest
    rid = _short(event.get("resourceId"))
    return EventInfo(
        key=key[:200],
        source="vendor_event",
        event_type=kind[:64],
        resource_type=_short(event.get("resourceType"), 64),
        resource_id=rid,
        patient_ref=_short(patient if isinstance(patient, str) else None),
        recheck=bool(rid) and _DELETE_WORD.search(kind) is not None,
    )


def describe(body: bytes) -> EventInfo:
    """Read the ids of one inbound event.

    Raises:
        MalformedEvent: not JSON, or neither shape (the reason names no content).
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedEvent("body is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedEvent("body is not a JSON object")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    try:
        if data.get("resourceType") == "Bundle":
            return _from_bundle(data, digest)
        return _from_vendor(data, digest)
    except (AttributeError, TypeError, IndexError, KeyError, ValueError):
        raise MalformedEvent("unexpected structure") from None
