"""Bulk Data 2.0 $export: kick-off, status polling, manifest, streamed NDJSON files, cancel.

The matching records are captured at kick-off (references to immutable Records, so cheap),
and files are streamed in chunks, so a large export never becomes one huge string.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from holovitals_sync.sandbox import operations as ops
from holovitals_sync.sandbox.faults import format_retry_after
from holovitals_sync.sandbox.fhir_routes import authorize, base_url
from holovitals_sync.sandbox.responses import FhirError, fhir_json, outcome
from holovitals_sync.sandbox.search import date_range
from holovitals_sync.sandbox.state import Sandbox
from holovitals_sync.sandbox.store import Record

NDJSON = "application/fhir+ndjson"
EXPORT_TYPES = [t for t in ops.SUPPORTED_TYPES if t != "Group"]
_CHUNK = 256  # records per streamed chunk
DELETED_FILE = "deleted.ndjson"
_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}


@dataclass
class ExportJob:
    id: str
    client_id: str
    request: str
    transaction_time: str
    polls_needed: int
    files: dict[str, tuple[str, list[Record]]] = field(default_factory=dict)  # name -> recs
    errors: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[Record] = field(default_factory=list)  # since `_since`: the deleted files
    polls: int = 0
    status: str = "in-progress"


def _types(request: Request, grant, job: ExportJob) -> list[str]:
    raw = request.query_params.get("_type")
    types = [t.strip() for t in raw.split(",") if t.strip()] if raw else EXPORT_TYPES
    unknown = [t for t in types if t not in EXPORT_TYPES]
    if unknown:
        raise FhirError(400, f"_type holds unsupported types: {', '.join(unknown)[:200]}")
    allowed = []
    for rtype in types:
        if grant.allows(rtype, "r"):
            allowed.append(rtype)
        else:
            job.errors.append(outcome(f"scope does not allow reading {rtype}", "forbidden"))
    return allowed


def _patients(sb: Sandbox, request: Request) -> set[str] | None:
    path = request.url.path
    if "/Group/" in path:
        group = ops.read(sb, "Group", request.path_params["id"]).resource()
        refs = (m.get("entity", {}).get("reference", "") for m in group.get("member") or [])
        return {r.split("/", 1)[1] for r in refs if r.startswith("Patient/")}
    if path.endswith("/Patient/$export"):
        return {r.id for r in sb.store.candidates("Patient")}
    return None


def _check_headers(request: Request) -> None:
    if "respond-async" not in request.headers.get("prefer", ""):
        raise FhirError(400, "$export needs the header Prefer: respond-async")
    if "application/fhir+json" not in request.headers.get("accept", ""):
        raise FhirError(400, "$export needs the header Accept: application/fhir+json")
    fmt = request.query_params.get("_outputFormat")
    if fmt and fmt not in _FORMATS:
        raise FhirError(400, "_outputFormat must be application/fhir+ndjson")


def _running(sb: Sandbox, client_id: str) -> bool:
    return any(j.client_id == client_id and j.status == "in-progress" for j in sb.exports.values())


def _collect(
    sb: Sandbox, job: ExportJob, types: list[str], patients: set[str] | None, since: str | None
) -> None:
    limit = sb.config.export_file_max_lines
    for rtype in types:
        recs = [
            r
            for r in sb.store.candidates(rtype)
            if (patients is None or r.patient in patients)
            and (since is None or r.last_updated > since)
        ]
        chunks = [recs[i : i + limit] for i in range(0, len(recs), limit)] if limit else [recs]
        for n, chunk in enumerate(c for c in chunks if c):
            job.files[f"{rtype}-{n + 1}.ndjson"] = (rtype, chunk)
        if since is not None:  # Bulk Data 2.0: what `_since` no longer finds, as deletes
            job.deleted += [
                r
                for r in sb.store.deleted_since(rtype, since)
                if patients is None or r.patient in patients
            ]


def _check_level(sb: Sandbox, request: Request) -> None:
    path = request.url.path
    level = (
        "group"
        if "/Group/" in path
        else "patient"
        if path.endswith("/Patient/$export")
        else "system"
    )
    allowed = sb.profile.export_levels
    if allowed is not None and level not in allowed:
        offered = ", ".join(sorted(allowed)) or "none"
        raise FhirError(
            400,
            f"{sb.profile.display_name} does not offer {level}-level $export (offered: {offered})",
            "not-supported",
        )


async def kickoff(request: Request) -> Response:
    sb, grant = authorize(request)
    _check_level(sb, request)
    _check_headers(request)
    one_at_a_time = sb.config.export_one_at_a_time or sb.profile.export_one_at_a_time
    if one_at_a_time and _running(sb, grant.client_id):
        raise FhirError(
            429,
            "an export of this client is already running",
            "throttled",
            {"Retry-After": format_retry_after(sb.config.export_retry_after)},
        )
    since_raw = request.query_params.get("_since")
    since = date_range(since_raw)[0] if since_raw else None
    job = ExportJob(
        secrets.token_hex(8),
        grant.client_id,
        str(request.url),
        sb.store.watermark(),
        sb.config.export_polls_before_complete,
    )
    with sb.store.lock:  # one consistent cut across all types
        job.transaction_time = sb.store.watermark()
        _collect(sb, job, _types(request, grant, job), _patients(sb, request), since)
    sb.exports[job.id] = job
    status_url = f"{base_url(request)}/_export/{job.id}"
    return Response(status_code=202, headers={"Content-Location": status_url})


def _job(request: Request) -> tuple[Sandbox, ExportJob]:
    sb, grant = authorize(request)
    job = sb.exports.get(request.path_params["job"])
    if job is None or job.client_id != grant.client_id or job.status == "cancelled":
        raise FhirError(404, "export job not found or cancelled")
    return sb, job


async def status(request: Request) -> Response:
    sb, job = _job(request)
    job.polls += 1
    if job.polls <= job.polls_needed:
        pct = int(100 * job.polls / (job.polls_needed + 1))
        return Response(
            status_code=202,
            headers={
                "X-Progress": f"{pct}% complete",
                "Retry-After": format_retry_after(sb.config.export_retry_after),
            },
        )
    job.status = "complete"
    base = f"{base_url(request)}/_export/{job.id}"
    output = [
        {"type": rtype, "url": f"{base}/{name}", "count": len(recs)}
        for name, (rtype, recs) in job.files.items()
    ]
    errors = [{"type": "OperationOutcome", "url": f"{base}/errors.ndjson"}] if job.errors else []
    manifest = {
        "transactionTime": job.transaction_time,
        "request": job.request,
        "requiresAccessToken": True,
        "output": output,
        "error": errors,
    }
    if job.deleted:
        manifest["deleted"] = [{"type": "Bundle", "url": f"{base}/{DELETED_FILE}"}]
    return fhir_json(manifest)


async def cancel(request: Request) -> Response:
    sb, job = _job(request)
    job.status = "cancelled"
    return fhir_json(outcome("export cancelled", "informational", "information"), 202)


def _deleted_lines(recs: list[Record]) -> Iterator[bytes]:
    """Bundles of DELETE requests, as the Bulk Data spec's `deleted` output has them."""
    for i in range(0, len(recs), _CHUNK):
        entries = [
            {"request": {"method": "DELETE", "url": f"{r.rtype}/{r.id}"}}
            for r in recs[i : i + _CHUNK]
        ]
        yield orjson.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}) + b"\n"


def _lines(recs: list[Record], truncated: bool) -> Iterator[bytes]:
    for i in range(0, len(recs), _CHUNK):
        chunk = recs[i : i + _CHUNK]
        last = truncated and i + _CHUNK >= len(recs)
        if last:  # a file cut mid-line, as an interrupted writer leaves it
            body = b"".join(r.data + b"\n" for r in chunk[:-1])
            yield body + chunk[-1].data[: len(chunk[-1].data) // 2]
        else:
            yield b"".join(r.data + b"\n" for r in chunk)


async def download(request: Request) -> Response:
    sb, job = _job(request)
    name = request.path_params["file"]
    if name == "errors.ndjson" and job.errors:
        return Response(b"".join(orjson.dumps(e) + b"\n" for e in job.errors), media_type=NDJSON)
    if name == DELETED_FILE and job.deleted:
        return Response(b"".join(_deleted_lines(job.deleted)), media_type=NDJSON)
    if name not in job.files:
        raise FhirError(404, "export file not found")
    fault = getattr(request.state, "fault", None)
    truncated = bool(fault and fault.truncated_ndjson)
    if truncated:
        sb.stats.fault("truncated_ndjson")
    return StreamingResponse(_lines(job.files[name][1], truncated), media_type=NDJSON)
