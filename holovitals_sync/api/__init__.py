"""The REST/webhook API, a FastAPI app that Reflex mounts as its `api_transformer`."""

from __future__ import annotations

from fastapi import FastAPI

from . import audit, auth, connections, health, users
from .errors import install_error_handlers


def create_api() -> FastAPI:
    """Build the API app with every router and the shared error shape."""
    api = FastAPI(
        title="HoloVitals Sync API",
        version="0.1.0",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    install_error_handlers(api)
    for module in (health, auth, users, connections, audit):
        api.include_router(module.router)
    return api
