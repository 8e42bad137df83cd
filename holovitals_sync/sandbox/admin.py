"""/_sandbox admin endpoints: tests and the demo steer the sandbox through these.

They are open (no token): the sandbox listens on loopback only and holds synthetic data.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from holovitals_sync.sandbox import adt, notify
from holovitals_sync.sandbox.clinic import advance_clinic_day
from holovitals_sync.sandbox.config import ClientRegistration
from holovitals_sync.sandbox.faults import FaultConfig
from holovitals_sync.sandbox.state import Sandbox
from holovitals_sync.sandbox.vendors import VendorProfile

log = logging.getLogger(__name__)
# Settings a running sandbox may change (PATCH /_sandbox/config).
RUNTIME_SETTINGS = {
    "token_lifetime_seconds",
    "default_page_size",
    "max_page_size",
    "refuse_count_over_max",
    "page_cost",
    "export_polls_before_complete",
    "export_retry_after",
    "export_file_max_lines",
    "export_one_at_a_time",
    "adt_target",
}


class NotifyRequest(BaseModel):
    url: str
    secret: str
    kind: notify.Kind = "event-notification"
    payload: notify.Payload = "id-only"
    resource: str | None = None  # e.g. "Patient/pt-00001"
    signature_style: notify.Style = "holovitals"
    # Normally counted per receiver URL; set it to simulate a gap (missed notifications).
    events_since_start: int | None = None


def _sb(request: Request) -> Sandbox:
    return request.app.state.sandbox


async def _json(request: Request) -> Any:
    try:
        return orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise ValueError("body is not JSON") from None


def _bad(exc: Exception) -> JSONResponse:
    msg = exc.errors(include_input=False) if isinstance(exc, ValidationError) else str(exc)
    return JSONResponse({"error": msg}, 400)


async def put_faults(request: Request) -> Response:
    try:
        cfg = FaultConfig.model_validate(await _json(request))
    except (ValueError, ValidationError) as exc:
        return _bad(exc)
    _sb(request).faults.set(cfg)
    return JSONResponse(cfg.model_dump())


async def get_faults(request: Request) -> Response:
    return JSONResponse(_sb(request).faults.config.model_dump())


async def delete_faults(request: Request) -> Response:
    _sb(request).faults.clear()
    return Response(status_code=204)


async def register_client(request: Request) -> Response:
    try:
        client = ClientRegistration.model_validate(await _json(request))
    except (ValueError, ValidationError) as exc:
        return _bad(exc)
    _sb(request).auth.register(client)
    return JSONResponse({"client_id": client.client_id}, 201)


async def expire_tokens(request: Request) -> Response:
    return JSONResponse({"expired": _sb(request).auth.expire_all()})


async def patch_config(request: Request) -> Response:
    sb = _sb(request)
    try:
        changes = await _json(request)
        unknown = set(changes) - RUNTIME_SETTINGS
        if unknown:
            raise ValueError(f"not changeable at runtime: {sorted(unknown)}")
        sb.config = sb.config.model_validate({**sb.config.model_dump(), **changes})
    except (ValueError, ValidationError) as exc:
        return _bad(exc)
    sb.auth.lifetime = sb.config.token_lifetime_seconds
    current = sb.config.model_dump(mode="json")
    return JSONResponse({k: current[k] for k in sorted(RUNTIME_SETTINGS)})


async def clinic_day(request: Request) -> Response:
    sb = _sb(request)
    changes = request.query_params.get("changes", "20")
    if not changes.isdecimal():
        return _bad(ValueError("changes must be a non-negative integer"))
    sb.clinic_days += 1
    # Deterministic per (seed, day number) unless the caller picks a seed.
    seed = int(request.query_params.get("seed", sb.config.seed * 7919 + sb.clinic_days))
    rng = random.Random(seed)
    result = advance_clinic_day(sb.store, int(changes), rng)
    log.info("clinic day %d: %d changes", sb.clinic_days, int(changes))
    if sb.config.adt_target:
        result["adt"] = await adt.send_clinic_day(
            sb.store,
            result,
            rng,
            target=sb.config.adt_target,
            application=sb.config.adt_application,
            facility=sb.config.adt_facility,
            # A merge on the first day, or when asked for (`merge=1`).
            merge=request.query_params.get("merge", "1" if sb.clinic_days == 1 else "0") == "1",
        )
        log.info("clinic day %d: ADT feed %s", sb.clinic_days, result["adt"])
    return JSONResponse(result)


class RawResource(BaseModel):
    type: str
    id: str
    body: Any


class SeedRequest(BaseModel):
    resources: list[RawResource]


async def seed_resources(request: Request) -> Response:
    """Serve resources exactly as given (broken ones included) from the next search on."""
    try:
        req = SeedRequest.model_validate(await _json(request))
        records = [_sb(request).store.put_raw(r.type, r.id, r.body) for r in req.resources]
    except (ValueError, ValidationError, TypeError) as exc:
        return _bad(exc)
    return JSONResponse({"seeded": [f"{r.rtype}/{r.id}" for r in records]}, 201)


async def stats(request: Request) -> Response:
    sb = _sb(request)
    return JSONResponse(sb.stats.snapshot(sb.auth.issued))


async def reset(request: Request) -> Response:
    """Faults off, counters and the inbox emptied, export jobs gone; data and tokens stay."""
    sb = _sb(request)
    sb.faults.clear()
    sb.stats.reset()
    sb.exports.clear()
    sb.inbox.clear()
    sb.inbox_total = 0
    return Response(status_code=204)


def _vendor_notify(profile: VendorProfile, req: NotifyRequest) -> NotifyRequest:
    """A vendor mode sends only what that vendor sends, signed its way."""
    if profile.notification == "any":
        return req
    if profile.notification != "subscriptions":
        raise ValueError(
            f"{profile.display_name} sends no FHIR notifications ({profile.notification})"
        )
    if req.kind == "vendor-event":
        raise ValueError(f"{profile.display_name} notifies through FHIR Subscriptions only")
    style = profile.notification_signature or req.signature_style
    return req.model_copy(update={"signature_style": style, "payload": "id-only"})


async def send_notify(request: Request) -> Response:
    sb = _sb(request)
    try:
        req = NotifyRequest.model_validate(await _json(request))
    except (ValueError, ValidationError) as exc:
        return _bad(exc)
    try:
        req = _vendor_notify(sb.profile, req)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, 409)
    resource = None
    patient = None
    deleted = False
    if req.resource and "/" in req.resource:
        rec = sb.store.get(*req.resource.split("/", 1))
        deleted = bool(rec and rec.deleted)  # announced as a delete, as an EHR would
        resource = rec.resource() if rec and not rec.deleted else None
        patient = f"Patient/{rec.patient}" if rec and rec.patient else None
    base = str(request.base_url).rstrip("/") + "/fhir"
    events = sb.notify_events.get(req.url, 0) + (req.kind == "event-notification")
    events = req.events_since_start if req.events_since_start is not None else events
    sb.notify_events[req.url] = events
    body, ctype = notify.build(
        req.kind, req.payload, req.resource, resource, base, patient, events, deleted
    )
    try:
        status = await notify.send_notification_async(
            req.url, body, ctype, req.secret, req.signature_style
        )
    except Exception as exc:  # the receiver being down is an answer, not a sandbox error
        return JSONResponse({"status": None, "error": type(exc).__name__}, 502)
    return JSONResponse({"status": status, "events_since_start": events})


async def inbox_receive(request: Request) -> Response:
    """A webhook subscriber stand-in: keeps each delivery's event type and signature headers
    (the demo subscribes it, so the delivery log has something real to show)."""
    sb = _sb(request)
    try:
        event = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        return JSONResponse({"error": "body is not JSON"}, 400)
    kept = {
        name: request.headers[name]
        for name in request.headers
        if name.lower().startswith(("x-holovitals-", "webhook-"))
    }
    sb.inbox.append(
        {"type": event.get("type") if isinstance(event, dict) else None, "headers": kept}
    )
    sb.inbox_total += 1
    return JSONResponse({"received": True}, 202)


async def inbox_list(request: Request) -> Response:
    sb = _sb(request)
    return JSONResponse({"total": sb.inbox_total, "deliveries": list(sb.inbox)})


routes = [
    Route("/_sandbox/inbox", inbox_receive, methods=["POST"]),
    Route("/_sandbox/inbox", inbox_list, methods=["GET"]),
    Route("/_sandbox/faults", put_faults, methods=["PUT", "POST"]),
    Route("/_sandbox/faults", get_faults, methods=["GET"]),
    Route("/_sandbox/faults", delete_faults, methods=["DELETE"]),
    Route("/_sandbox/clients", register_client, methods=["POST"]),
    Route("/_sandbox/tokens/expire", expire_tokens, methods=["POST"]),
    Route("/_sandbox/config", patch_config, methods=["PATCH"]),
    Route("/_sandbox/clinic-day", clinic_day, methods=["POST"]),
    Route("/_sandbox/resources", seed_resources, methods=["POST"]),
    Route("/_sandbox/stats", stats, methods=["GET"]),
    Route("/_sandbox/reset", reset, methods=["POST"]),
    Route("/_sandbox/notify", send_notify, methods=["POST"]),
]
