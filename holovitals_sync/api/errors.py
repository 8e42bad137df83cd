"""One JSON shape for every error the API returns: {"error": {"code", "message", ...}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_body",
    429: "rate_limited",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. `fields` on 422

    code: str
    message: str


class ErrorBody(BaseModel):
    """The documented shape of every error response."""

    error: ErrorDetail


# Errors any route can return through the handlers below, documented on every router so the
# OpenAPI document (and clients generated from it) describe them instead of FastAPI's default 422.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": code.replace("_", " ")}
    for status, code in _CODES.items()
    if status in (400, 401, 403, 404, 409, 422)
}


def error_body(status: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": _CODES.get(status, "error"), "message": message, **extra}}


def install_error_handlers(app: FastAPI) -> None:
    """Map HTTP errors, validation errors and crashes to the one shape (never a traceback)."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return JSONResponse(error_body(exc.status_code, detail), status_code=exc.status_code)

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

    @app.exception_handler(Exception)
    async def _crash(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error in API: %s", type(exc).__name__)
        return JSONResponse(error_body(500, "internal error"), status_code=500)
