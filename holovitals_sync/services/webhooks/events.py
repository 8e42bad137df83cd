"""The outbound event types (about data, deletes and sync, plus `alert.raised`), grouped, and
the ids an event may carry.

Events carry references (ids) only, and so do the stored deliveries; a subscriber fetches
what it needs with its own access, unless its subscription opted in to clinical content
(`include_content`), whose bodies gain the stored resource at send time (see content.py).
"""

from __future__ import annotations

# Grouped as the docs list them: patients, clinical records, sync runs, conflicts.
EVENT_GROUPS: dict[str, tuple[str, ...]] = {
    "patient": ("patient.created", "patient.updated", "patient.merged", "patient.deleted"),
    "clinical": (
        "encounter.created",
        "encounter.updated",
        "observation.created",
        "observation.updated",
        "condition.updated",
        "medication.updated",
        "allergy.updated",
        "immunization.updated",
        # Deleted at the EHR (the record is kept here as a tombstone).
        "encounter.deleted",
        "observation.deleted",
        "condition.deleted",
        "medication.deleted",
        "allergy.deleted",
        "immunization.deleted",
    ),
    "sync": ("sync.completed", "sync.failed"),
    "conflict": ("conflict.detected", "conflict.resolved"),
    # An operational alert opened (services.alerts): raised once per condition.
    "alert": ("alert.raised",),
}
EVENT_TYPES: tuple[str, ...] = tuple(t for group in EVENT_GROUPS.values() for t in group)
# Sent only by "send test event"; nobody subscribes to it, every subscription receives it.
TEST_EVENT = "webhook.test"

# Keys an event reference may hold: ids and types, never clinical content.
REF_KEYS = frozenset(
    {
        "connection_id",
        "resource_type",
        "resource_id",
        "version_id",
        "patient_id",
        "job_id",
        "conflict_id",
        "record_id",
        "merged_into",
        "alert_id",
        "alert_kind",
        "queue",
        "subscription_id",
    }
)


class InvalidEvent(ValueError):
    """An unknown event type, or a reference carrying more than ids."""


def check_event(event_type: str, refs: dict[str, object]) -> dict[str, str | int]:
    """Validate an event before it is stored.

    Args:
        event_type: One of `EVENT_TYPES` (or `TEST_EVENT`).
        refs: Ids describing what changed, e.g. {"connection_id": 3, "resource_type":
            "Patient", "resource_id": "pt-1"}.

    Returns:
        The references, as plain strings and integers.

    Raises:
        InvalidEvent: unknown type, unknown key, or a value that is not a short id.
    """
    if event_type not in EVENT_TYPES and event_type != TEST_EVENT:
        raise InvalidEvent(f"unknown event type {event_type!r}")
    unknown = set(refs) - REF_KEYS
    if unknown:
        raise InvalidEvent(f"event references may hold ids only; unknown keys {sorted(unknown)}")
    clean: dict[str, str | int] = {}
    for key, value in refs.items():
        if value is None:
            continue
        if not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > 200:
            raise InvalidEvent(f"reference {key} must be a short id")
        clean[key] = value
    return clean
