"""`GET /api/metrics`: Prometheus exposition (needs a viewer token, like every read)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from ..config import get_settings
from ..services.metrics import render_metrics
from .deps import Viewer

router = APIRouter(tags=["metrics"])


@router.get("/api/metrics", response_class=Response)
async def metrics(_viewer: Viewer) -> Response:
    """Jobs, records, open conflicts, webhook deliveries and queue depth."""
    body = await run_in_threadpool(render_metrics, get_settings())
    return Response(body, media_type=CONTENT_TYPE_LATEST)
