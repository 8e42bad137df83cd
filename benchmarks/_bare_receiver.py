"""The bare endpoint the webhook receiver is compared with (benchmarks/webhooks.py).

The least a receiver must do to acknowledge an event safely, and nothing else: check the
`X-HoloVitals-Signature` (HMAC-SHA256 over "<t>.<body>", timestamp within the tolerance, in
constant time), drop a replay with Redis `SET NX` on the body's digest, queue the body with
`LPUSH`, answer 202. No framework, no database, no parsing of the body: a raw ASGI app
served by granian like the product's backend. Configured by the environment:
BARE_SECRET, BARE_REDIS_URL, BARE_PREFIX (its Redis keys).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Any

from redis import asyncio as aioredis

SECRET = os.environ.get("BARE_SECRET", "").encode()
PREFIX = os.environ.get("BARE_PREFIX", "bench:bare")
TOLERANCE = 300
SIGNATURE = b"x-holovitals-signature"
_redis: aioredis.Redis | None = None


def _valid(header: bytes, body: bytes) -> bool:
    try:
        fields = dict(part.split(b"=", 1) for part in header.split(b","))
        stamp = int(fields[b"t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - stamp) > TOLERANCE:
        return False
    expected = hmac.new(SECRET, b"%d." % stamp + body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, fields.get(b"v1", b""))


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _redis
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    header = next((v for k, v in scope["headers"] if k.lower() == SIGNATURE), b"")
    if not _valid(header, body):
        await _answer(send, 401, b'{"detail": "bad signature"}')
        return
    if _redis is None:
        _redis = aioredis.from_url(os.environ["BARE_REDIS_URL"])
    digest = hashlib.sha256(body).hexdigest()
    if not await _redis.set(f"{PREFIX}:seen:{digest}", 1, nx=True, ex=86_400):
        await _answer(send, 409, b'{"detail": "duplicate"}')
        return
    await _redis.lpush(f"{PREFIX}:queue", body)
    await _answer(send, 202, b'{"status": "accepted"}')
