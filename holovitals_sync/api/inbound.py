"""`POST /api/webhooks/inbound/{connection_id}`: the receiver EHRs send events to.

No session or API token: the sender proves itself with the connection's signature scheme
(or bearer token), checked over the exact raw bytes. The body is read with a cap, stored as
ids only, and acknowledged with 202; the work happens on the webhooks queue.

The route below documents the receiver (OpenAPI) and serves it when the API runs without
`InboundFastPath`; `create_api` installs that middleware, which answers the same requests
the same way ahead of FastAPI's routing and dependency resolution. Those cost more CPU than
everything the receiver itself does (measured: ~190 us of ~500 us per event), and the
receiver is the one route whose rate an outside system sets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import get_settings
from ..db import session_scope
from ..services.webhooks import inbound
from .errors import error_body
from .intake import intake_of

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])
TOO_LARGE = inbound.Outcome(413, "body too large")
Answer = tuple[int, dict[str, Any]]


class TooLarge(Exception):
    """The body passed the configured limit."""


def _declared_too_large(declared: str | None, limit: int) -> bool:
    """A declared length over the limit (or not a number) is refused before reading."""
    return declared is not None and (not declared.isdecimal() or int(declared) > limit)


def _load_secret(connection_id: int) -> inbound.InboundSecret | None:
    with session_scope() as session:
        return inbound.secret_for(session, connection_id)


def _reject(connection_id: int, outcome: inbound.Outcome) -> None:
    with session_scope() as session:
        inbound.reject(session, connection_id, outcome)


def _replayed(connection_id: int) -> inbound.Outcome:
    with session_scope() as session:
        return inbound.stored(session, connection_id, None)


async def _refused(connection_id: int, outcome: inbound.Outcome) -> Answer:
    await run_in_threadpool(_reject, connection_id, outcome)
    return outcome.status_code, error_body(outcome.status_code, outcome.reason)


async def answer(
    app: FastAPI, connection_id: int, body: bytes, headers: Mapping[str, str]
) -> Answer:
    """Check, store and acknowledge one event whose body was read within the cap."""
    # Checking a signature takes microseconds: done here; only the database leaves the loop.
    config = inbound.cached_secret(connection_id)
    if config is None:
        config = await run_in_threadpool(_load_secret, connection_id)
    result = inbound.check(config, body, headers, get_settings())
    if isinstance(result, inbound.Outcome):
        return await _refused(connection_id, result)
    event_id = await intake_of(app).submit(connection_id, result)
    if event_id is None:
        outcome = await run_in_threadpool(_replayed, connection_id)
        return outcome.status_code, error_body(outcome.status_code, outcome.reason)
    return 202, {"status": "accepted", "event_id": event_id}


@router.post("/api/webhooks/inbound/{connection_id}", status_code=202)
async def receive_inbound(connection_id: int, request: Request) -> JSONResponse:
    """Accept one signed event from an EHR (202), or say why not (400/401/403/404/409/413)."""
    try:
        body = await read_capped(
            request.receive,
            request.headers.get("content-length"),
            get_settings().webhook_max_body_bytes,
        )
    except TooLarge:
        status, content = await _refused(connection_id, TOO_LARGE)
        return JSONResponse(content, status_code=status, headers={"Connection": "close"})
    if body is None:  # the sender hung up mid-body: nothing stored, nobody to answer
        return JSONResponse(error_body(400, "body incomplete"), status_code=400)
    status, content = await answer(request.app, connection_id, body, _auth_headers(request))
    return JSONResponse(content, status_code=status)


_AUTH_HEADERS = ("X-HoloVitals-Signature", "X-Hub-Signature", "X-Signature", "Authorization")
_BY_LOWER = {name.lower().encode(): name for name in _AUTH_HEADERS}


def _auth_headers(request: Request) -> dict[str, str]:
    """The authenticity headers only, under the names the service looks up."""
    return {name: request.headers[name] for name in _AUTH_HEADERS if name in request.headers}


# What FastAPI would route to `receive_inbound`: an id that fits the database's integers
# (a longer one goes on to FastAPI, which answers 422 as for any other route).
_PATH = re.compile(r"/api/webhooks/inbound/([0-9]{1,18})")


def _inbound_id(scope: Scope) -> int | None:
    """The connection id when this request is an event for the receiver."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    match = _PATH.fullmatch(path)
    return int(match.group(1)) if match else None


class InboundFastPath:
    """ASGI middleware: answers `POST /api/webhooks/inbound/{id}` itself, exactly as the
    route would (same checks, statuses and bodies); everything else goes on unchanged.

    `create_api` installs it inside FastAPI, where it skips FastAPI's routing and dependency
    resolution. Under Reflex (`up`), `receiver_ahead` also wraps it around the whole backend
    app: the API is mounted inside Reflex's own Starlette app, whose middleware (context,
    CORS, error pages, mount routing) and FastAPI's each event passed through first, about
    a seventh of the backend's CPU under a webhook load. Outside FastAPI's error middleware,
    it catches its own crash as that would: a 500 in the API's error shape, the exception's
    type logged (never its message, which may quote a value).
    """

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection_id = _inbound_id(scope)
        if connection_id is None:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await _serve(self.api, scope, receive, tracked, connection_id)
        except Exception as exc:
            log.error("unhandled error in the webhook receiver: %s", type(exc).__name__)
            if not started:
                await _respond(send, 500, error_body(500, "internal error"))


async def _serve(
    app: FastAPI, scope: Scope, receive: Receive, send: Send, connection_id: int
) -> None:
    limit = get_settings().webhook_max_body_bytes
    declared, auth = None, {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.lower()
        if name == b"content-length":
            declared = raw_value.decode("latin-1")
        elif name in _BY_LOWER:
            auth[_BY_LOWER[name]] = raw_value.decode("latin-1")
    try:
        body = await read_capped(receive, declared, limit)
    except TooLarge:
        status, content = await _refused(connection_id, TOO_LARGE)
        await _respond(send, status, content, close=True)
        return
    if body is None:
        return  # the sender hung up mid-body: nobody to answer, nothing stored
    status, content = await answer(app, connection_id, body, auth)
    await _respond(send, status, content)


async def read_capped(receive: Receive, declared: str | None, limit: int) -> bytes | None:
    """The raw body, refusing early (`TooLarge`): a declared length over the limit is not read
    at all, and a streamed (chunked) body stops being read as soon as it passes the limit.
    None when the client disconnected first. The route and the middleware both read so."""
    if _declared_too_large(declared, limit):
        raise TooLarge
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, content: dict[str, Any], *, close: bool = False
) -> None:
    payload = orjson.dumps(content)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
