"""Outbound notifications: FHIR Subscriptions (R5 backport for R4) rest-hook Bundles and a
vendor-style event JSON, signed with HMAC-SHA256 of the exact body bytes.

Signature styles (``signature_style``):
  holovitals  X-HoloVitals-Signature: t=<unix>,v1=<hex HMAC(secret, f"{t}.".encode() + body)>
  hub         X-Hub-Signature: sha256=<hex HMAC(secret, body)>        (WebSub, athenahealth)
  plain       X-Signature: <hex HMAC(secret, body)>
  all         all three headers
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import orjson

from holovitals_sync.sandbox.data import fhir_instant

STATUS_PROFILE = (
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
    "backport-subscription-status-r4"
)
DEFAULT_TOPIC = "http://holovitals.example.org/SubscriptionTopic/patient-data-changed"
Kind = Literal["handshake", "heartbeat", "event-notification", "vendor-event"]
Payload = Literal["empty", "id-only", "full-resource"]
Style = Literal["holovitals", "hub", "plain", "all"]


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(
    body: bytes, secret: str, style: Style = "holovitals", timestamp: int | None = None
) -> dict[str, str]:
    t = int(time.time()) if timestamp is None else timestamp
    headers: dict[str, str] = {}
    if style in ("holovitals", "all"):
        headers["X-HoloVitals-Signature"] = f"t={t},v1={_hex(secret, f'{t}.'.encode() + body)}"
    if style in ("hub", "all"):
        headers["X-Hub-Signature"] = f"sha256={_hex(secret, body)}"
    if style in ("plain", "all"):
        headers["X-Signature"] = _hex(secret, body)
    return headers


def _status(
    kind: str, subscription: str, topic: str, events: int, focus: str | None
) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": subscription}},
        {"name": "topic", "valueCanonical": topic},
        {"name": "status", "valueCode": "active"},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events)},
    ]
    if kind == "event-notification":
        part = [
            {"name": "event-number", "valueString": str(events)},
            {"name": "timestamp", "valueInstant": fhir_instant(datetime.now(UTC))},
        ]
        if focus:
            part.append({"name": "focus", "valueReference": {"reference": focus}})
        params.append({"name": "notification-event", "part": part})
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": params,
    }


def subscription_bundle(
    kind: str = "event-notification",
    payload: Payload = "id-only",
    focus: str | None = None,
    resource: dict[str, Any] | None = None,
    base_url: str = "",
    subscription: str = "Subscription/sandbox-1",
    topic: str = DEFAULT_TOPIC,
    events: int = 1,
    deleted: bool = False,
) -> dict[str, Any]:
    """A backport notification Bundle (type history); focus is e.g. "Patient/pt-00001".

    A deleted focus is a history entry with `request.method` DELETE and no resource."""
    status = _status(kind, subscription, topic, events, focus)
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:uuid:{status['id']}",
            "resource": status,
            "request": {"method": "GET", "url": f"{subscription}/$status"},
            "response": {"status": "200"},
        }
    ]
    if kind == "event-notification" and focus and payload != "empty":
        entry: dict[str, Any] = {
            "fullUrl": f"{base_url}/{focus}" if base_url else focus,
            "request": {"method": "DELETE" if deleted else "PUT", "url": focus},
            "response": {"status": "204" if deleted else "200"},
        }
        if payload == "full-resource" and resource is not None and not deleted:
            entry["resource"] = resource
        entries.append(entry)
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "history",
        "timestamp": fhir_instant(datetime.now(UTC)),
        "entry": entries,
    }


def vendor_event(
    focus: str, event_type: str | None = None, patient: str | None = None, deleted: bool = False
) -> dict[str, Any]:
    rtype, _, rid = focus.partition("/")
    return {
        "eventId": str(uuid.uuid4()),
        "eventType": event_type or f"{rtype.lower()}.{'deleted' if deleted else 'updated'}",
        "resourceType": rtype,
        "resourceId": rid,
        "patient": patient or (focus if rtype == "Patient" else None),
        "occurredAt": fhir_instant(datetime.now(UTC)),
    }


def build(
    kind: Kind,
    payload: Payload,
    focus: str | None,
    resource: dict[str, Any] | None,
    base_url: str = "",
    patient: str | None = None,
    events: int = 1,
    deleted: bool = False,
) -> tuple[bytes, str]:
    """Body bytes and content type of one notification (`deleted`: about a delete)."""
    if kind == "vendor-event":
        event = vendor_event(focus or "Patient/unknown", patient=patient, deleted=deleted)
        return orjson.dumps(event), "application/json"
    bundle = subscription_bundle(
        kind, payload, focus, resource, base_url, events=events, deleted=deleted
    )
    return orjson.dumps(bundle), "application/fhir+json"


def send_notification(
    url: str,
    secret: str,
    kind: Kind = "event-notification",
    payload: Payload = "id-only",
    focus: str | None = None,
    resource: dict[str, Any] | None = None,
    signature_style: Style = "holovitals",
    timeout: float = 5.0,
) -> int:
    """Send one signed notification synchronously (for tests); returns the HTTP status."""
    body, ctype = build(kind, payload, focus, resource)
    headers = {"Content-Type": ctype, **sign(body, secret, signature_style)}
    return httpx.post(url, content=body, headers=headers, timeout=timeout).status_code


async def send_notification_async(
    url: str, body: bytes, ctype: str, secret: str, signature_style: Style, timeout: float = 5.0
) -> int:
    headers = {"Content-Type": ctype, **sign(body, secret, signature_style)}
    async with httpx.AsyncClient(timeout=timeout) as client:
        return (await client.post(url, content=body, headers=headers)).status_code
