"""The data events of a sync: `patient.created`, `observation.updated`, ... per stored change.

A batch's changes become deliveries in the batch's own transaction (so a rolled-back batch
announces nothing, and a replayed one announces only what it changes again); one look-up of
the active subscriptions per batch, and nothing at all when nobody wants data events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import Session, select

from ...models import WebhookDelivery, WebhookSubscription
from .emit import _enqueue_after_commit, _matches

# FHIR type -> (event when created, event when updated); None: the type has no event.
TYPE_EVENTS: dict[str, tuple[str, str]] = {
    "Patient": ("patient.created", "patient.updated"),
    "Encounter": ("encounter.created", "encounter.updated"),
    "Observation": ("observation.created", "observation.updated"),
    "Condition": ("condition.updated", "condition.updated"),
    "AllergyIntolerance": ("allergy.updated", "allergy.updated"),
    "Immunization": ("immunization.updated", "immunization.updated"),
    **{
        t: ("medication.updated", "medication.updated")
        for t in (
            "MedicationRequest",
            "MedicationStatement",
            "MedicationAdministration",
            "MedicationDispense",
            "Medication",
        )
    },
}
# FHIR type -> its event when the EHR deleted it.
DELETE_EVENTS: dict[str, str] = {
    "Patient": "patient.deleted",
    "Encounter": "encounter.deleted",
    "Observation": "observation.deleted",
    "Condition": "condition.deleted",
    "AllergyIntolerance": "allergy.deleted",
    "Immunization": "immunization.deleted",
    **{
        t: "medication.deleted"
        for t in (
            "MedicationRequest",
            "MedicationStatement",
            "MedicationAdministration",
            "MedicationDispense",
            "Medication",
        )
    },
}
DATA_EVENTS = (
    frozenset(e for pair in TYPE_EVENTS.values() for e in pair)
    | frozenset(DELETE_EVENTS.values())
    | {"patient.merged"}
)


@dataclass(frozen=True)
class Change:
    """One record a batch created or updated (ids only)."""

    resource_type: str
    resource_id: str
    version_id: str | None
    created: bool
    patient_id: str | None = None
    merged_into: str | None = None  # a Patient whose `link` says it was replaced
    deleted: bool = False  # the EHR deleted it (tombstoned here)


def event_of(change: Change) -> str | None:
    if change.deleted:
        return DELETE_EVENTS.get(change.resource_type)
    if change.merged_into is not None:
        return "patient.merged"
    pair = TYPE_EVENTS.get(change.resource_type)
    return None if pair is None else pair[0 if change.created else 1]


def merged_into(resource: dict) -> str | None:
    """The surviving Patient's id when this one was merged away (`link.type` replaced-by)."""
    if resource.get("resourceType") != "Patient":
        return None
    for link in resource.get("link") or ():
        other = (link.get("other") or {}).get("reference", "") if isinstance(link, dict) else ""
        if link.get("type") == "replaced-by" and str(other).startswith("Patient/"):
            return str(other).split("/", 1)[1][:200]
    return None


def _refs(connection_id: int, change: Change) -> dict[str, str | int | None]:
    refs: dict[str, str | int | None] = {
        "connection_id": connection_id,
        "resource_type": change.resource_type,
        "resource_id": change.resource_id,
        "version_id": change.version_id,
        "patient_id": change.patient_id,
    }
    if change.merged_into is not None:
        refs["merged_into"] = change.merged_into
    return {k: v for k, v in refs.items() if v is not None}


def emit_changes(session: Session, connection_id: int, changes: Iterable[Change]) -> int:
    """Deliveries for a batch's changes; returns how many were created.

    `changes` is only iterated when a subscription wants data events (a lazy iterable
    spares a sync without subscribers building them).
    """
    subs = [
        s
        for s in session.exec(select(WebhookSubscription).where(WebhookSubscription.active)).all()
        if DATA_EVENTS.intersection(s.event_types)
    ]
    if not subs:
        return 0
    rows: list[tuple[WebhookDelivery, WebhookSubscription]] = []
    for change in changes:
        event_type = event_of(change)
        if event_type is None:
            continue
        refs = _refs(connection_id, change)
        event_id = str(uuid.uuid4())
        rows += [
            (
                WebhookDelivery(
                    subscription_id=sub.id, event_id=event_id, event_type=event_type, event_ref=refs
                ),
                sub,
            )
            for sub in subs
            if _matches(sub, event_type, refs)
        ]
    if not rows:
        return 0
    session.add_all(row for row, _ in rows)
    session.flush()
    _enqueue_after_commit(session, [(row.id, sub.id, sub.timeout_seconds) for row, sub in rows])
    return len(rows)
