"""Raw ASGI middleware: counts calls, injects faults, records stats.

It sits outside Starlette so it can do what a handler cannot: drop the TCP connection
without any answer, or answer before routing (a real gateway's 429 never reaches the app).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from holovitals_sync.sandbox.auth import TOKEN_PATH
from holovitals_sync.sandbox.faults import (
    FAULT_HEADER,
    FaultAction,
    format_retry_after,
    merge,
    parse_fault_header,
)
from holovitals_sync.sandbox.responses import FHIR_JSON, outcome
from holovitals_sync.sandbox.state import Sandbox

log = logging.getLogger(__name__)
# Discovery and the token endpoint are not "FHIR calls": faults and call counts skip them.
_OPEN = ("/fhir/metadata", "/fhir/.well-known/smart-configuration", TOKEN_PATH)


def is_fhir_call(path: str) -> bool:
    return (path == "/fhir" or path.startswith("/fhir/")) and path not in _OPEN


async def _answer(send: Any, status: int, body: dict, headers: dict[str, str]) -> None:
    raw = orjson.dumps(body)
    hdrs = [(b"content-type", FHIR_JSON.encode()), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


async def _drop(send: Any) -> None:
    """Close the connection with no response at all.

    uvicorn's `send` is a bound method of its per-request cycle, which holds the transport;
    closing it and marking the cycle disconnected stops uvicorn from writing a 500.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None:
        transport.close()
        cycle.disconnected = True
        await asyncio.sleep(0)
        return
    # Another server: start a response and break it off, still a connection error client-side.
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]}
    )
    raise ConnectionAbortedError("sandbox fault: connection dropped")


class SandboxMiddleware:
    def __init__(self, app: Any, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    def _token_faults(self, scope: dict) -> bool:
        return self.sandbox.faults.config.token_endpoint_faults or any(
            k == FAULT_HEADER.encode() for k, _ in scope["headers"]
        )

    def _action(self, scope: dict) -> FaultAction:
        action = self.sandbox.faults.next_call()
        spec = next((v.decode() for k, v in scope["headers"] if k == FAULT_HEADER.encode()), None)
        return merge(action, parse_fault_header(spec)) if spec else action

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sb, path, method = self.sandbox, scope["path"], scope["method"]
        fhir = is_fhir_call(path)
        faultable = fhir or (path == TOKEN_PATH and self._token_faults(scope))
        status = [0]

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                cost = (scope.get("state") or {}).get("page_cost")
                if cost:  # a search page's modelled cost (config.PageCost)
                    await asyncio.sleep(cost)
            await send(message)

        if fhir:
            sb.stats.begin()
        try:
            if faultable and not await self._fault(scope, send_status, send):
                return
            await self.app(scope, receive, send_status)
        finally:
            if fhir:
                sb.stats.end()
            sb.stats.record(
                method, path, status[0], fhir, scope.get("query_string", b"").decode("latin-1")
            )

    async def _fault(self, scope: dict, send: Any, raw_send: Any) -> bool:
        """Apply faults; False when the request was answered (or dropped) here."""
        sb = self.sandbox
        try:
            action = self._action(scope)
        except ValueError as exc:
            await _answer(send, 400, outcome(f"bad X-Sandbox-Fault: {exc}", "invalid"), {})
            return False
        if action.expire_tokens:
            sb.stats.fault("expire_token")
            sb.auth.expire_all()
        if action.latency_ms:
            await asyncio.sleep(action.latency_ms / 1000)
        if action.drop:
            sb.stats.fault("drop_connection")
            await _drop(raw_send)  # uvicorn's own send: it leads to the transport
            return False
        if action.status is not None:
            sb.stats.fault(action.kind or f"status_{action.status}")
            headers = {}
            if action.status in (429, 503):
                headers["Retry-After"] = format_retry_after(action.retry_after)
            code = "throttled" if action.status == 429 else "transient"
            await _answer(
                send, action.status, outcome(f"sandbox fault: {action.kind}", code), headers
            )
            return False
        scope.setdefault("state", {})["fault"] = action
        return True
