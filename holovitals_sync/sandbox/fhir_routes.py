"""REST handlers for /fhir: read, vread, history, search, paging, $everything, writes."""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response

from holovitals_sync.sandbox import operations as ops
from holovitals_sync.sandbox.auth import Grant
from holovitals_sync.sandbox.responses import (
    FhirError,
    etag,
    fhir_json,
    parse_etag,
    resource_response,
)
from holovitals_sync.sandbox.search import bundle_page, malformed_page, parse_query, sort_key
from holovitals_sync.sandbox.state import Sandbox, Snapshot
from holovitals_sync.sandbox.store import Record


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def authorize(request: Request, rtype: str | None = None, perm: str = "r") -> tuple[Sandbox, Grant]:
    sb: Sandbox = request.app.state.sandbox
    fault = getattr(request.state, "fault", None)
    if fault is not None and fault.reject_token:
        raise FhirError(401, "access token expired", "expired")
    grant = sb.auth.check(request.headers.get("authorization"))
    if rtype is not None:
        ops.check_access(grant, rtype, perm)
    return sb, grant


async def json_body(request: Request) -> object:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise FhirError(400, "body is not valid JSON", "structure") from None


def _next_links(
    base: str,
    key: str,
    offset: int,
    count: int,
    total: int,
    paging: tuple[str, list[tuple[str, str]]] | None,
) -> dict[str, str]:
    links: dict[str, str] = {}
    after = offset + count
    if after < total:
        if paging is not None:  # cursor mode: the type URL with its params and a cursor
            rtype, carry = paging
            query = urlencode([*carry, ("_count", str(count)), ("cursor", f"{key}.{after}")])
            links["next"] = f"{base}/{rtype}?{query}"
        else:
            links["next"] = f"{base}?_getpages={key}&_getpagesoffset={after}&_count={count}"
    if offset > 0 and paging is None:
        links["previous"] = (
            f"{base}?_getpages={key}&_getpagesoffset={max(0, offset - count)}&_count={count}"
        )
    return links


def _page(
    request: Request,
    sb: Sandbox,
    recs: list[Record],
    offset: int,
    count: int,
    key: str | None,
    self_url: str,
    paging: tuple[str, list[tuple[str, str]]] | None = None,
) -> Response:
    base = base_url(request)
    fault = getattr(request.state, "fault", None)
    kind = sb.faults.next_search_page() or (fault.malformed_kind if fault else None)
    if kind:
        sb.stats.fault("malformed_page")
        return fhir_json(malformed_page(kind))
    links = {"self": self_url}
    if key is not None:
        links |= _next_links(base, key, offset, count, len(recs), paging)
    page = recs[offset : offset + count]
    # What the page would cost a real server (waited out by the middleware before it answers).
    request.state.page_cost = sb.config.page_cost.seconds(offset, len(recs), len(page))
    if sb.profile.repeat_ids_across_pages and offset > 0 and page:
        page = [recs[offset - 1], *page]  # as Cerner does: the last entry shows up again
    return fhir_json(bundle_page(base, page, len(recs), links))


def _check_profile(sb: Sandbox, rtype: str, pairs: list[tuple[str, str]]) -> None:
    names = {name.split(":")[0] for name, _ in pairs}
    vendor = sb.profile.display_name
    for name, prefix in sb.profile.always_params.items():
        given = [v for n, v in pairs if n == name]
        if not given or not given[0].startswith(prefix):
            raise FhirError(
                400,
                f"{vendor} requires the {name} parameter ({prefix}...) on every search",
                "required",
            )
    needed = sb.profile.required_search_params.get(rtype)
    if needed and not names & set(needed):
        raise FhirError(400, f"{rtype} search requires one of: {', '.join(needed)}")
    lu_types = sb.profile.last_updated_types
    if "_lastUpdated" in names and lu_types is not None and rtype not in lu_types:
        raise FhirError(400, f"_lastUpdated is not supported on {rtype}", "not-supported")


async def search(request: Request) -> Response:
    rtype = request.path_params["type"]
    sb, _ = authorize(request, rtype, "s")
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        pairs += parse_qsl((await request.body()).decode(), keep_blank_values=True)
    lenient = "handling=lenient" in request.headers.get("prefer", "")
    return run_search(request, sb, rtype, pairs, str(request.url), lenient)


def _cursor_page(
    request: Request,
    sb: Sandbox,
    rtype: str,
    cursor: str,
    carry: list[tuple[str, str]],
    count: int,
    self_url: str,
) -> Response:
    key, _, offset = cursor.partition(".")
    snap = sb.snapshots.get(key)
    if snap is None or snap.rtype != rtype or not offset.isdecimal():
        raise FhirError(410, "cursor expired or unknown; run the search again")
    return _page(request, sb, snap.records, int(offset), count, key, self_url, (rtype, carry))


def run_search(
    request: Request,
    sb: Sandbox,
    rtype: str,
    pairs: list[tuple[str, str]],
    self_url: str,
    lenient: bool = False,
) -> Response:
    _check_profile(sb, rtype, pairs)
    carry = [(n, v) for n, v in pairs if n in sb.profile.always_params]
    cursor = (
        next((v for n, v in pairs if n == "cursor"), None) if sb.profile.cursor_paging else None
    )
    pairs = [(n, v) for n, v in pairs if n not in sb.profile.always_params and n != "cursor"]
    q = parse_query(
        pairs, sb.default_page_size, sb.max_page_size, lenient, sb.config.refuse_count_over_max
    )
    paging = (rtype, carry) if sb.profile.cursor_paging else None
    if cursor is not None:
        return _cursor_page(request, sb, rtype, cursor, carry, q.count, self_url)
    recs = sorted((r for r in sb.store.candidates(rtype, q.patient) if q.matches(r)), key=sort_key)
    limit = sb.profile.max_search_matches
    if limit is not None and len(recs) > limit:
        raise FhirError(
            400,
            f"{sb.profile.display_name} error 4127: the search matched more "
            f"than {limit} results; add criteria",
            "too-costly",
        )
    if q.summary_count:
        return fhir_json(bundle_page(base_url(request), [], len(recs), {"self": self_url}))
    key = None
    if len(recs) > q.count:
        key = sb.snapshots.add(Snapshot(rtype, recs, time.time()))
    return _page(request, sb, recs, 0, q.count, key, self_url, paging)


async def base_get(request: Request) -> Response:
    """GET /fhir?_getpages=...: the opaque next/previous links of a search."""
    sb: Sandbox = request.app.state.sandbox
    params = request.query_params
    if sb.profile.cursor_paging:
        raise FhirError(400, f"{sb.profile.display_name} pages with the cursor parameter")
    snap = sb.snapshots.get(params.get("_getpages", ""))
    if snap is None:
        raise FhirError(410, "search page set expired or unknown; run the search again")
    authorize(request, snap.rtype, "s")
    offset, count = params.get("_getpagesoffset", "0"), params.get("_count", "50")
    if not (offset.isdecimal() and count.isdecimal() and int(count) > 0):
        raise FhirError(400, "_getpagesoffset and _count must be positive integers")
    count_i = min(int(count), sb.max_page_size)
    return _page(
        request, sb, snap.records, int(offset), count_i, params["_getpages"], str(request.url)
    )


async def everything(request: Request) -> Response:
    sb, grant = authorize(request, "Patient", "r")
    if not sb.profile.patient_everything:
        raise FhirError(
            400, f"{sb.profile.display_name} does not support Patient/$everything", "not-supported"
        )
    patient = ops.read(sb, "Patient", request.path_params["id"])
    recs: list[Record] = [patient]
    for rtype in ops.SUPPORTED_TYPES:
        if rtype != "Patient" and grant.allows(rtype, "r"):
            recs += sorted(sb.store.candidates(rtype, patient.id), key=sort_key)
    q = parse_query(
        [p for p in request.query_params.multi_items() if p[0] == "_count"],
        sb.default_page_size,
        sb.max_page_size,
    )
    key = sb.snapshots.add(Snapshot("Patient", recs, time.time()))
    return _page(request, sb, recs, 0, q.count, key, str(request.url))


async def read(request: Request) -> Response:
    rtype, rid = request.path_params["type"], request.path_params["id"]
    sb, _ = authorize(request, rtype, "r")
    return resource_response(ops.read(sb, rtype, rid), versioned=sb.profile.supports_versioning)


async def vread(request: Request) -> Response:
    p = request.path_params
    sb, _ = authorize(request, p["type"], "r")
    return resource_response(
        ops.vread(sb, p["type"], p["id"], p["vid"]), versioned=sb.profile.supports_versioning
    )


def _history_entry(base: str, rec: Record) -> dict:
    method = "DELETE" if rec.deleted else ("POST" if rec.version == 1 else "PUT")
    entry: dict = {
        "fullUrl": f"{base}/{rec.rtype}/{rec.id}",
        "request": {"method": method, "url": f"{rec.rtype}/{rec.id}"},
        "response": {
            "status": "201" if rec.version == 1 else "200",
            "etag": etag(rec),
            "lastModified": rec.last_updated,
        },
    }
    if not rec.deleted:
        entry["resource"] = rec.resource()
    return entry


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(400, "_since must be an instant") from None
    if moment.tzinfo is None:
        raise FhirError(400, "_since must carry a time zone")
    return moment


async def type_history(request: Request) -> Response:
    """Every version of a type's records since `_since`, newest first, offset-paged."""
    rtype = request.path_params["type"]
    sb, _ = authorize(request, rtype, "r")
    if not sb.profile.type_history:
        raise FhirError(
            400, f"{sb.profile.display_name} has no type-level _history", "not-supported"
        )
    params = request.query_params
    since, count, offset = (
        params.get("_since"),
        params.get("_count", ""),
        params.get("_offset", "0"),
    )
    size = (
        min(int(count), sb.max_page_size)
        if count.isdecimal() and int(count) > 0
        else sb.default_page_size
    )
    start = int(offset) if offset.isdecimal() else 0
    versions = sb.store.type_history(rtype, _since(since))
    base = base_url(request)
    links = [{"relation": "self", "url": str(request.url)}]
    if start + size < len(versions):
        query = urlencode(
            [*([("_since", since)] if since else []), ("_count", size), ("_offset", start + size)]
        )
        links.append({"relation": "next", "url": f"{base}/{rtype}/_history?{query}"})
    return fhir_json(
        {
            "resourceType": "Bundle",
            "type": "history",
            "total": len(versions),
            "link": links,
            "entry": [_history_entry(base, v) for v in versions[start : start + size]],
        }
    )


async def history(request: Request) -> Response:
    rtype, rid = request.path_params["type"], request.path_params["id"]
    sb, _ = authorize(request, rtype, "r")
    versions = sb.store.history(rtype, rid)
    if not versions:
        raise FhirError(404, f"{rtype}/{rid[:64]} not found")
    base = base_url(request)
    return fhir_json(
        {
            "resourceType": "Bundle",
            "type": "history",
            "total": len(versions),
            "link": [{"relation": "self", "url": str(request.url)}],
            "entry": [_history_entry(base, r) for r in versions],
        }
    )


def _written(request: Request, rec: Record, status: int) -> Response:
    location = f"{base_url(request)}/{rec.rtype}/{rec.id}/_history/{rec.version}"
    if "return=minimal" in request.headers.get("prefer", ""):
        return Response(status_code=status, headers={"ETag": etag(rec), "Location": location})
    versioned = request.app.state.sandbox.profile.supports_versioning
    return resource_response(rec, status, location, versioned)


async def create(request: Request) -> Response:
    rtype = request.path_params["type"]
    sb, _ = authorize(request, rtype, "c")
    rec, created = ops.create(
        sb, rtype, await json_body(request), request.headers.get("if-none-exist")
    )
    return _written(request, rec, 201 if created else 200)


async def update(request: Request) -> Response:
    rtype, rid = request.path_params["type"], request.path_params["id"]
    sb, _ = authorize(request, rtype, "u")
    if_match = parse_etag(request.headers.get("if-match"))
    rec, created = ops.update(sb, rtype, rid, await json_body(request), if_match)
    return _written(request, rec, 201 if created else 200)


async def delete(request: Request) -> Response:
    rtype, rid = request.path_params["type"], request.path_params["id"]
    sb, _ = authorize(request, rtype, "d")
    ops.delete(sb, rtype, rid, parse_etag(request.headers.get("if-match")))
    return Response(status_code=204)
