"""FHIR HTTP answers: content type, ETags, OperationOutcome errors."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from holovitals_sync.sandbox.store import Record

FHIR_JSON = "application/fhir+json"

_STATUS_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    422: "processing",
    429: "throttled",
    500: "exception",
    503: "transient",
}


class FhirError(Exception):
    """Raised anywhere in a handler; becomes an OperationOutcome with the given status.

    Diagnostics must never carry PHI: name types, ids and parameters, never values.
    """

    def __init__(
        self,
        status: int,
        diagnostics: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.code = code or _STATUS_CODES.get(status, "processing")
        self.headers = headers or {}


def outcome(diagnostics: str, code: str = "processing", severity: str = "error") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def fhir_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(raw, status_code=status, headers=headers, media_type=FHIR_JSON)


def error_response(err: FhirError) -> Response:
    headers = dict(err.headers)
    if err.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer error="invalid_token"')
    return fhir_json(outcome(err.diagnostics, err.code), err.status, headers)


def etag(rec: Record) -> str:
    return f'W/"{rec.version}"'


def resource_response(
    rec: Record, status: int = 200, location: str | None = None, versioned: bool = True
) -> Response:
    # A vendor profile without versioning sends no ETag, like such EHRs do.
    headers = {"ETag": etag(rec)} if versioned else {}
    if location:
        headers["Location"] = location
    return fhir_json(rec.data, status, headers)


def parse_etag(value: str | None) -> int | None:
    """W/"3" or "3" -> 3; None when absent. A malformed tag is a 400."""
    if not value:
        return None
    tag = value.strip()
    tag = tag[2:] if tag.startswith("W/") else tag
    try:
        return int(tag.strip('"'))
    except ValueError:
        raise FhirError(400, 'If-Match must be a version ETag like W/"1"') from None
