"""The sandbox ASGI application: routes, error handling, fault middleware."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from holovitals_sync.sandbox import admin, export
from holovitals_sync.sandbox import fhir_routes as fr
from holovitals_sync.sandbox.auth import TOKEN_PATH, token_endpoint
from holovitals_sync.sandbox.batch import batch
from holovitals_sync.sandbox.capability import metadata, smart_configuration
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.middleware import SandboxMiddleware
from holovitals_sync.sandbox.responses import FhirError, error_response
from holovitals_sync.sandbox.state import Sandbox

log = logging.getLogger(__name__)

_ROUTES = [
    Route("/fhir/metadata", metadata, methods=["GET"]),
    Route("/fhir/.well-known/smart-configuration", smart_configuration, methods=["GET"]),
    Route(TOKEN_PATH, token_endpoint, methods=["POST"]),
    Route("/fhir", fr.base_get, methods=["GET"]),
    Route("/fhir/", fr.base_get, methods=["GET"]),  # httpx base_url clients add the slash
    Route("/fhir", batch, methods=["POST"]),
    Route("/fhir/", batch, methods=["POST"]),
    Route("/fhir/$export", export.kickoff, methods=["GET"]),
    Route("/fhir/Patient/$export", export.kickoff, methods=["GET"]),
    Route("/fhir/Group/{id}/$export", export.kickoff, methods=["GET"]),
    Route("/fhir/_export/{job}", export.status, methods=["GET"]),
    Route("/fhir/_export/{job}", export.cancel, methods=["DELETE"]),
    Route("/fhir/_export/{job}/{file}", export.download, methods=["GET"]),
    Route("/fhir/Patient/{id}/$everything", fr.everything, methods=["GET"]),
    Route("/fhir/{type}/_search", fr.search, methods=["POST"]),
    Route("/fhir/{type}/_history", fr.type_history, methods=["GET"]),
    Route("/fhir/{type}/{id}/_history/{vid}", fr.vread, methods=["GET"]),
    Route("/fhir/{type}/{id}/_history", fr.history, methods=["GET"]),
    Route("/fhir/{type}", fr.search, methods=["GET"]),
    Route("/fhir/{type}", fr.create, methods=["POST"]),
    Route("/fhir/{type}/{id}", fr.read, methods=["GET"]),
    Route("/fhir/{type}/{id}", fr.update, methods=["PUT"]),
    Route("/fhir/{type}/{id}", fr.delete, methods=["DELETE"]),
]


async def _fhir_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = "not-supported" if exc.status_code in (404, 405) else "processing"
    return error_response(FhirError(exc.status_code, f"no route for {request.method} here", code))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("sandbox handler failed (%s)", type(exc).__name__)
    return error_response(FhirError(500, "internal sandbox error", "exception"))


def create_app(config: SandboxConfig | None = None) -> SandboxMiddleware:
    """Build the ASGI app (data generated now); `.sandbox` exposes the state in-process."""
    sandbox = Sandbox(config or SandboxConfig())
    app = Starlette(
        routes=[*_ROUTES, *admin.routes],
        exception_handlers={
            FhirError: _fhir_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.sandbox = sandbox
    return SandboxMiddleware(app, sandbox)
