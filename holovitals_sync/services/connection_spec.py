"""From an `EHRConnection` row to the adapter's `ConnectionSpec` (secrets decrypted here).

The one place specs are built: sync runs, write-backs, HL7 look-ups and connection tests.
"""

from __future__ import annotations

from ..adapters import ConnectionSpec
from ..config import get_settings
from ..models import EHRConnection
from .crypto import decrypt
from .platform.redis import redis_connection
from .platform.request_gate import RedisGate


def connection_spec(row: EHRConnection) -> ConnectionSpec:
    """The adapter's view of a connection; decrypted secrets never leave this object."""
    settings = get_settings()
    params = {k: str(v) for k, v in (row.vendor_params or {}).items()}
    return ConnectionSpec(
        vendor=row.vendor.value,
        base_url=row.base_url,
        client_id=row.client_id or None,
        auth_method=row.auth_method,
        client_secret=decrypt(row.credentials_encrypted) if row.credentials_encrypted else None,
        private_key_pem=decrypt(row.private_key_encrypted) if row.private_key_encrypted else None,
        scopes=row.scopes.split() or None,
        vendor_params=params,
        kid=row.key_id,
        page_size=row.page_size,
        page_size_learned=row.page_size_learned,
        # Streams of one job count against the connection's limit of requests at once.
        streams=max(1, min(row.stream_limit, row.concurrency_limit)),
        full_sync_via=row.full_sync_via,
        resource_types=tuple(row.resource_types or ()),
        timeout=settings.http_read_timeout,
        connect_timeout=settings.http_connect_timeout,
        max_connections=settings.http_pool_size,
        total_timeout=settings.http_total_timeout,
        max_response_bytes=settings.http_max_response_bytes,
        max_pages=settings.sync_max_pages,
        stall_seconds=settings.sync_stall_seconds,
        gate=_gate(row),
    )


def _gate(row: EHRConnection) -> RedisGate | None:
    """The connection's request gate (None for a row not stored yet)."""
    if row.id is None or get_settings().redis_url is None:
        return None
    return RedisGate(redis_connection(), row.id, row.concurrency_limit)
