"""POST /fhir with a batch (independent entries) or transaction (all-or-nothing) Bundle."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response

from holovitals_sync.sandbox import operations as ops
from holovitals_sync.sandbox.fhir_routes import authorize, base_url, json_body, run_search
from holovitals_sync.sandbox.responses import FhirError, etag, fhir_json, outcome, parse_etag
from holovitals_sync.sandbox.state import Sandbox
from holovitals_sync.sandbox.store import Record

_REASONS = {200: "OK", 201: "Created", 204: "No Content"}


def _ok(rec: Record | None, status: int) -> dict[str, Any]:
    resp: dict[str, Any] = {"status": f"{status} {_REASONS.get(status, '')}".strip()}
    if rec is None:
        return {"response": resp}
    resp.update(
        location=f"{rec.rtype}/{rec.id}/_history/{rec.version}",
        etag=etag(rec),
        lastModified=rec.last_updated,
    )
    return {"resource": rec.resource(), "response": resp}


def _search_entry(request: Request, sb: Sandbox, rtype: str, url: str) -> dict[str, Any]:
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    resp = run_search(request, sb, rtype, pairs, f"{base_url(request)}/{url}")
    return {"resource": orjson.loads(resp.body), "response": {"status": "200 OK"}}


def _run_entry(request: Request, sb: Sandbox, grant, entry: dict[str, Any]) -> dict[str, Any]:
    req = entry.get("request") or {}
    method, url = str(req.get("method", "")).upper(), str(req.get("url", ""))
    parts = urlsplit(url).path.strip("/").split("/")
    rtype = parts[0]
    perm = {"GET": "r", "POST": "c", "PUT": "u", "DELETE": "d"}.get(method)
    if perm is None or not rtype:
        raise FhirError(400, "entry.request needs method GET/POST/PUT/DELETE and a url")
    if method == "GET" and len(parts) == 1:
        ops.check_access(grant, rtype, "s")
        return _search_entry(request, sb, rtype, url)
    ops.check_access(grant, rtype, perm)
    if method == "GET" and len(parts) == 2:
        return _ok(ops.read(sb, rtype, parts[1]), 200)
    if method == "POST" and len(parts) == 1:
        rec, created = ops.create(
            sb, rtype, entry.get("resource"), req.get("ifNoneExist"), entry.get("_assigned_id")
        )
        return _ok(rec, 201 if created else 200)
    if method == "PUT" and len(parts) == 2:
        rec, created = ops.update(
            sb, rtype, parts[1], entry.get("resource"), parse_etag(req.get("ifMatch"))
        )
        return _ok(rec, 201 if created else 200)
    if method == "DELETE" and len(parts) == 2:
        ops.delete(sb, rtype, parts[1])
        return _ok(None, 204)
    raise FhirError(400, f"unsupported {method} url in bundle entry")


def _resolve_placeholders(bundle: dict[str, Any]) -> dict[str, Any]:
    """Give POST entries with urn:uuid fullUrls their ids up front and rewrite references."""
    raw = orjson.dumps(bundle)
    assigned: list[str | None] = []
    for entry in bundle.get("entry") or []:
        full = entry.get("fullUrl") or ""
        rtype = (entry.get("resource") or {}).get("resourceType")
        if full.startswith("urn:uuid:") and (entry.get("request") or {}).get("method") == "POST":
            new_id = uuid.uuid4().hex[:16]
            raw = raw.replace(f'"{full}"'.encode(), f'"{rtype}/{new_id}"'.encode())
            assigned.append(new_id)
        else:
            assigned.append(None)
    out = orjson.loads(raw)
    for entry, new_id in zip(out.get("entry") or [], assigned, strict=True):
        if new_id:
            entry["_assigned_id"] = new_id
    return out


async def batch(request: Request) -> Response:
    sb, grant = authorize(request)
    bundle = await json_body(request)
    if (
        not isinstance(bundle, dict)
        or bundle.get("resourceType") != "Bundle"
        or bundle.get("type") not in ("batch", "transaction")
    ):
        raise FhirError(400, "POST /fhir takes a Bundle of type batch or transaction")
    entries = bundle.get("entry") or []
    if bundle["type"] == "batch":
        out = []
        for entry in entries:
            try:
                out.append(_run_entry(request, sb, grant, entry))
            except FhirError as err:
                out.append(
                    {
                        "response": {
                            "status": str(err.status),
                            "outcome": outcome(err.diagnostics, err.code),
                        }
                    }
                )
        return fhir_json({"resourceType": "Bundle", "type": "batch-response", "entry": out})
    bundle = _resolve_placeholders(bundle)
    with sb.store.transaction():  # any FhirError below undoes every write of the bundle
        out = [_run_entry(request, sb, grant, e) for e in bundle.get("entry") or []]
    return fhir_json({"resourceType": "Bundle", "type": "transaction-response", "entry": out})
