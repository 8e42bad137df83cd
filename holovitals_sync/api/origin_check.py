"""Cross-site request refusal for changes made with the dashboard's session cookie.

A page on another origin (even another localhost port) could make the browser send the
user's cookie with a POST and create an admin API token. CORS keeps such a page from reading
answers, not from sending the request: so a change (POST, PUT, PATCH, DELETE) that is
authenticated by the session cookie, not by a bearer token, is refused when its `Origin`
is not one of the dashboard's own (`Settings.allowed_origins`). Requests without an Origin
(scripts, curl with a cookie jar) are not from a browser page and pass.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..config import get_settings
from .deps import SESSION_COOKIE

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_COOKIE = SESSION_COOKIE.encode() + b"="


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value
    return None


def _own_origin(scope: dict[str, Any]) -> str:
    host = (_header(scope, b"host") or b"").decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{host}"


class OriginCheck:
    """Pure ASGI (no per-request cost beyond a header scan on the webhook hot path)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self._refused(scope):
            body = orjson.dumps(
                {
                    "error": {
                        "code": "forbidden",
                        "message": (
                            "cross-site request refused: this origin may not act with your session"
                        ),
                    }
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _refused(scope: dict[str, Any]) -> bool:
        if scope.get("method") in SAFE or _header(scope, b"authorization") is not None:
            return False
        cookie = _header(scope, b"cookie") or b""
        origin = _header(scope, b"origin")
        if _COOKIE not in cookie or origin is None:
            return False
        sent_from = origin.decode("latin-1").rstrip("/")
        if sent_from == _own_origin(scope):
            return False  # same origin: a page of the backend itself (the API docs page)
        return sent_from not in get_settings().allowed_origins
