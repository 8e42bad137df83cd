"""One JSON shape for every error the API returns: {"error": {"code", "message", ...}}."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, ConfigDict
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..models import Role
from .deps import current_principal

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_body",
    428: "precondition_required",
    429: "rate_limited",
    502: "upstream_refused",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. `fields` on 422

    code: str
    message: str


class ErrorBody(BaseModel):
    """The documented shape of every error response."""

    error: ErrorDetail


def _response(status: int) -> dict[str, Any]:
    return {"model": ErrorBody, "description": _CODES[status].replace("_", " ")}


# The catalogue of the common error statuses. Routers are included with it (so FastAPI's own
# 422 schema never shows); `document_errors` then narrows each route to what it can produce.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: _response(status) for status in (400, 401, 403, 404, 409, 422)
}

# What a route answers beyond what its signature shows (see `route_error_statuses`): an id in
# the body or query that names nothing (404), a state that refuses the change (409), a
# semantic refusal (400), a size limit (413), the EHR refusing a write-back (502), the job
# queue being out of reach (503). Keyed by (method, path); tests/integration/api/
# test_error_responses.py fails on an entry whose route is gone.
DECLARED_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    # The receiver authenticates by signature, not by session: every refusal is its own.
    ("POST", "/api/webhooks/inbound/{connection_id}"): (400, 401, 403, 409, 413),
    ("POST", "/api/auth/login"): (401, 429),  # 429: attempt limits, busy hashing
    ("POST", "/api/auth/tokens"): (403,),  # a token above the caller's own role
    ("PUT", "/api/alerts/thresholds"): (404,),
    ("POST", "/api/alerts/{alert_id}/acknowledge"): (409,),
    ("PUT", "/api/sync/conflicts/policies"): (404,),
    ("POST", "/api/sync/conflicts/{conflict_id}/resolve"): (400, 409, 502),
    ("POST", "/api/sync/conflicts/resolve-bulk"): (400,),
    ("POST", "/api/connections"): (409,),
    ("PATCH", "/api/connections/{connection_id}"): (409,),
    ("POST", "/api/sync/jobs"): (404, 503),
    ("POST", "/api/sync/jobs/{job_id}/cancel"): (409,),
    ("POST", "/api/sync/jobs/{job_id}/retry"): (409, 503),
    ("POST", "/api/sync/dead-letter/replay"): (404, 409, 503),
    ("GET", "/api/records"): (404,),
    ("GET", "/api/records/errors"): (404,),
    ("GET", "/api/records/errors.csv"): (404,),
    # A local change: a body that is not JSON or too large, a record an open conflict holds,
    # a stale or missing If-Match, a patch of another type (the body is read raw: its media
    # type picks the patch format).
    ("PUT", "/api/records/{connection_id}/{resource_type}/{remote_id}"): (400, 409, 412, 413, 428),
    ("PATCH", "/api/records/{connection_id}/{resource_type}/{remote_id}"): (
        400,
        409,
        412,
        413,
        415,
        428,
    ),
    # A delete: held by a conflict, a tombstone already, or a type the vendor takes no FHIR
    # delete of (409); a stale or missing If-Match.
    ("DELETE", "/api/records/{connection_id}/{resource_type}/{remote_id}"): (409, 412, 428),
    ("POST", "/api/transformations/rules"): (404,),
    ("POST", "/api/transformations/rules/reorder"): (404,),
    ("GET", "/api/sync/statistics"): (503,),
    ("POST", "/api/users"): (409,),
}


def _busy() -> JSONResponse:
    """A request that found the database too busy: it changed nothing; try again shortly."""
    return JSONResponse(
        error_body(503, "the database is busy; nothing was changed, try again"),
        status_code=503,
        headers={"Retry-After": "2"},
    )


def error_body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": _CODES.get(status, "error"), "message": message, **extra}}


def install_error_handlers(app: FastAPI) -> None:
    """Map HTTP errors, validation errors and crashes to the one shape (never a traceback)."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        # Headers such as Retry-After (429) and WWW-Authenticate (401) go out with it.
        return JSONResponse(
            error_body(exc.status_code, detail),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        return JSONResponse(error_body(422, "invalid request", fields=fields), status_code=422)

    @app.exception_handler(OverflowError)
    async def _overflow(_request: Request, _exc: OverflowError) -> JSONResponse:
        # An id or number beyond what the database stores (SQLite: 64-bit): the client's error.
        return JSONResponse(error_body(422, "number out of range"), status_code=422)

    @app.exception_handler(sa_exc.DataError)
    async def _data(_request: Request, exc: sa_exc.DataError) -> JSONResponse:
        # PostgreSQL refusing a value the request carried, such as an id beyond its
        # integers (SQLite raises OverflowError above for the same request).
        if "out of range" in str(exc.orig).lower():
            return JSONResponse(error_body(422, "number out of range"), status_code=422)
        return JSONResponse(error_body(422, "invalid value"), status_code=422)

    @app.exception_handler(sa_exc.TimeoutError)
    async def _pool_busy(_request: Request, _exc: Exception) -> JSONResponse:
        # Every pooled database connection stayed busy: the request did nothing, try again.
        return _busy()

    @app.exception_handler(sa_exc.OperationalError)
    async def _locked(_request: Request, exc: sa_exc.OperationalError) -> JSONResponse:
        if "locked" in str(exc.orig).lower():  # SQLite's write lock outwaited busy_timeout
            return _busy()
        log.error(
            "database error in API: %s: %s", type(exc.orig).__name__, str(exc.orig)[:120]
        )  # the driver's message: no statement, no values
        return JSONResponse(error_body(503, "the database is not answering"), status_code=503)

    @app.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error in API: %s", type(exc).__name__)
        return JSONResponse(error_body(500, "internal error"), status_code=500)


def _dependencies(dependant: Dependant) -> list[Dependant]:
    found = [dependant]
    for sub in dependant.dependencies:
        found.extend(_dependencies(sub))
    return found


def _required_role(call: Any) -> Role | None:
    """The role a `deps.require(role)` check asks for (None for any other dependency)."""
    if getattr(call, "__qualname__", "") != "require.<locals>.check":
        return None
    role = inspect.getclosurevars(call).nonlocals.get("role")
    return role if isinstance(role, Role) else None


def api_routes(app: FastAPI) -> list[RouteContext]:
    """Every API operation as served (included routers resolved: full path, dependencies)."""
    return [ctx for ctx in iter_route_contexts(app.routes)
            if isinstance(ctx.original_route, APIRoute)]  # fmt: skip


def route_error_statuses(route: RouteContext) -> set[int]:
    """The error statuses this route can answer with, all in the one `ErrorBody` shape.

    From its signature: 401 when it reads the caller (a bad token is refused even where
    none is required), 403 when it needs more than the viewer role, 404 for an id in the path,
    422 for any parameter or body (also JSON that does not parse), 400 for body bytes that
    are not text. Anything else is declared in `DECLARED_ERRORS`.
    """
    parts = _dependencies(route.dependant)
    calls = [d.call for d in parts]
    roles = [r for r in map(_required_role, calls) if r is not None]
    statuses: set[int] = set()
    if current_principal in calls or roles:
        statuses.add(401)
    if any(r is not Role.VIEWER for r in roles):
        statuses.add(403)
    if route.dependant.path_params:
        statuses.add(404)
    if any(d.path_params or d.query_params or d.header_params or d.cookie_params
           or d.body_params for d in parts):  # fmt: skip
        statuses.add(422)
    if any(d.body_params for d in parts):
        statuses.add(400)  # body bytes that are not even text (FastAPI's own refusal)
    for method in route.methods or ():
        statuses.update(DECLARED_ERRORS.get((method, route.path_format), ()))
    return statuses


def _is_catalogue_entry(response: dict[str, Any], status: str) -> bool:
    """Whether an OpenAPI response is the catalogue's copy (not one a route declared itself).

    FastAPI files it under the route's own media type (a CSV route's errors under
    text/csv); `narrow_error_responses` puts it back under application/json, as sent.
    """
    content = response.get("content", {})
    return (
        len(content) == 1
        and next(iter(content.values())).get("schema", {}).get("$ref", "").endswith("/ErrorBody")
        and response.get("description") == _response(int(status))["description"]
    )


def narrow_error_responses(schema: dict[str, Any], routes: list[RouteContext]) -> None:
    """Per operation: drop catalogue errors it cannot produce, add those it can (in place)."""
    wanted = {(method.lower(), route.path_format): route_error_statuses(route)
              for route in routes for method in route.methods or ()}  # fmt: skip
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            statuses = wanted.get((method, path))
            if statuses is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in [s for s in responses if s.isdigit() and int(s) in _CODES]:
                if not _is_catalogue_entry(responses[status], status):
                    continue
                if int(status) not in statuses:
                    del responses[status]
                else:  # errors are JSON whatever the route answers when it succeeds
                    responses[status]["content"] = {"application/json": {"schema": dict(error_ref)}}
            for status in sorted(statuses):
                responses.setdefault(
                    str(status),
                    {
                        "description": _response(status)["description"],
                        "content": {"application/json": {"schema": dict(error_ref)}},
                    },
                )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorBody" not in components:
        defs = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(defs.pop("$defs", {}))
        components["ErrorBody"] = defs


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document give each operation the error responses it can produce.

    Routers are included with the whole catalogue (`ERROR_RESPONSES`); the document is then
    narrowed once, when first built, from the routes themselves (`route_error_statuses`).
    """
    build = app.openapi
    narrowed: list[dict[str, Any]] = []  # the document last narrowed (FastAPI caches it)

    def openapi() -> dict[str, Any]:
        schema = build()
        if not narrowed or narrowed[0] is not schema:
            narrow_error_responses(schema, api_routes(app))
            narrowed[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
