"""`POST /api/webhooks/inbound/{connection_id}`: the receiver EHRs send events to.

No session or API token: the sender proves itself with the connection's signature scheme
(or bearer token), checked over the exact raw bytes. The body is read with a cap, stored as
ids only, and acknowledged with 202; the work happens on the webhooks queue.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..config import get_settings
from ..db import session_scope
from ..services.webhooks import inbound
from .errors import error_body
from .intake import intake_of

router = APIRouter(tags=["webhooks"])


class TooLarge(Exception):
    """The body passed the configured limit."""


async def read_capped(request: Request, limit: int) -> bytes:
    """The raw body, refusing early: a declared length over the limit is not read at all,
    and a streamed (chunked) body stops being read as soon as it passes the limit."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _load_secret(connection_id: int) -> inbound.InboundSecret | None:
    with session_scope() as session:
        return inbound.secret_for(session, connection_id)


def _reject(connection_id: int, outcome: inbound.Outcome) -> None:
    with session_scope() as session:
        inbound.reject(session, connection_id, outcome)


def _replayed(connection_id: int) -> inbound.Outcome:
    with session_scope() as session:
        return inbound.stored(session, connection_id, None)


def _error(outcome: inbound.Outcome) -> JSONResponse:
    return JSONResponse(error_body(outcome.status_code, outcome.reason),
                        status_code=outcome.status_code)


@router.post("/api/webhooks/inbound/{connection_id}", status_code=202)
async def receive_inbound(connection_id: int, request: Request) -> JSONResponse:
    """Accept one signed event from an EHR (202), or say why not (400/401/403/404/409/413)."""
    settings = get_settings()
    try:
        body = await read_capped(request, settings.webhook_max_body_bytes)
    except TooLarge:
        await run_in_threadpool(_reject, connection_id, inbound.Outcome(413, "body too large"))
        return JSONResponse(error_body(413, "body too large"), status_code=413,
                            headers={"Connection": "close"})
    # Checking a signature takes microseconds: done here; only the database leaves the loop.
    config = inbound.cached_secret(connection_id)
    if config is None:
        config = await run_in_threadpool(_load_secret, connection_id)
    result = inbound.check(config, body, _auth_headers(request), settings)
    if isinstance(result, inbound.Outcome):
        await run_in_threadpool(_reject, connection_id, result)
        return _error(result)
    event_id = await intake_of(request.app).submit(connection_id, result)
    if event_id is None:
        return _error(await run_in_threadpool(_replayed, connection_id))
    return JSONResponse({"status": "accepted", "event_id": event_id}, status_code=202)


_AUTH_HEADERS = ("X-HoloVitals-Signature", "X-Hub-Signature", "X-Signature", "Authorization")


def _auth_headers(request: Request) -> dict[str, str]:
    """The authenticity headers only, under the names the service looks up."""
    return {name: request.headers[name] for name in _AUTH_HEADERS if name in request.headers}
