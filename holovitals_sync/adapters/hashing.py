"""Content hashes: equal for resources that differ only in server bookkeeping."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

# Servers bump these on every write even when nothing clinical changed.
_VOLATILE_META = ("versionId", "lastUpdated")


def canonical(resource: dict[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, no whitespace) without volatile meta fields.

    Args:
        resource: A FHIR resource.

    Returns:
        The canonical bytes.
    """
    body = dict(resource)
    meta = body.get("meta")
    if isinstance(meta, dict):
        kept = {k: v for k, v in meta.items() if k not in _VOLATILE_META}
        if kept:
            body["meta"] = kept
        else:
            body.pop("meta")
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def content_hash(resource: dict[str, Any]) -> str:
    """SHA-256 hex digest of the canonical form; unchanged records hash the same.

    Args:
        resource: A FHIR resource.

    Returns:
        64 hex characters.
    """
    return hashlib.sha256(canonical(resource)).hexdigest()
