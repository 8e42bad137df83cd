"""Sync statistics: queues, jobs, records, throughput and per-connection lag."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from ..services.orchestration import statistics
from ..services.platform.redis import QueueUnavailable, redis_connection
from .deps import SessionDep, Viewer

router = APIRouter(prefix="/api/sync", tags=["statistics"])


@router.get("/statistics", response_model=dict[str, Any])
def get_statistics(_viewer: Viewer, session: SessionDep) -> dict[str, Any]:
    """Per queue family waiting/running/completed/failed, records, durations, lag."""
    try:
        redis = redis_connection()
    except QueueUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    return statistics.collect(session, redis)
