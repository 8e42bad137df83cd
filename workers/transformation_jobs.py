"""RQ job entry points of the transformations queue family (thin: they call services)."""

from __future__ import annotations

from holovitals_sync.services.validation.revalidate import revalidate


def revalidate_connection(connection_id: int, resource_types: list[str] | None) -> int:
    """Validate a connection's stored records again after its rules changed."""
    result = revalidate(connection_id, resource_types)
    return result.flagged + result.cleared
