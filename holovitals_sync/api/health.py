"""`GET /api/health`: database, Redis and live workers per queue family."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..config import get_settings
from ..services.health import HealthReport, check_health

router = APIRouter(tags=["health"])


@router.get("/api/health", response_model=HealthReport)
async def health() -> JSONResponse:
    """200 when the database and Redis answer; 503 naming the part that does not."""
    report = await run_in_threadpool(check_health, get_settings())
    return JSONResponse(report.model_dump(), status_code=200 if report.healthy else 503)
