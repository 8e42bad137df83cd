"""The REST/webhook API, a FastAPI app that Reflex mounts as its `api_transformer`."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp

from .. import telemetry
from ..config import get_settings
from ..services.metrics import record_fhir_requests
from . import (
    alerts,
    audit,
    auth,
    conflicts,
    connections,
    health,
    hl7,
    inbound,
    jobs,
    metrics,
    records,
    rules,
    statistics,
    users,
    validation_rules,
    webhooks,
)
from .docs import install_docs
from .errors import ERROR_RESPONSES, document_errors, install_error_handlers
from .origin_check import OriginCheck


def create_api() -> FastAPI:
    """Build the API app with every router and the shared error shape."""
    settings = get_settings()
    telemetry.logs.configure(settings.log_format)
    telemetry.start("api")  # off unless OTEL_EXPORTER_OTLP_ENDPOINT is set
    api = FastAPI(
        title="HoloVitals Sync API",
        version="0.1.0",
        docs_url=None,  # served by .docs from local files, not a CDN
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    install_error_handlers(api)
    install_docs(api)
    # Requests this process makes (test connection, conflict write-back) count in /metrics.
    record_fhir_requests(settings)
    # First: the receiver is the busiest route, and routes are matched in order. The route
    # documents it; the middleware serves it without FastAPI's per-request routing cost.
    api.include_router(inbound.router, responses=ERROR_RESPONSES)
    api.add_middleware(OriginCheck)
    api.add_middleware(inbound.InboundFastPath, api=api)
    for module in (
        health,
        auth,
        users,
        connections,
        audit,
        webhooks,
        jobs,
        statistics,
        conflicts,
        metrics,
        rules,
        validation_rules,
        records,
        alerts,
        hl7,
    ):
        api.include_router(module.router, responses=ERROR_RESPONSES)
    api.include_router(webhooks.connections_router, responses=ERROR_RESPONSES)
    document_errors(api)  # last: each route gets the error statuses it can produce
    telemetry.instrument_api(api)
    return api


def receiver_ahead(backend: ASGIApp, api: FastAPI) -> ASGIApp:
    """The whole backend app (Reflex's, with `api` mounted in it) with the webhook receiver
    answered in front of it (`inbound.InboundFastPath`). Traced, it stays behind FastAPI,
    whose instrumentation gives each event its span."""
    return backend if telemetry.started() else inbound.InboundFastPath(backend, api)
