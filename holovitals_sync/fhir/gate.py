"""A limit on the requests one connection has in flight at once, across every process.

A hospital agrees to N of our requests at once, whatever runs them: several jobs, several
streams of one job, several workers on several machines. The client asks the gate for a
slot before each HTTP attempt and gives it back when the answer's headers are in (by then
the server has done the work of the request). This package only defines the protocol; the
application supplies a gate shared through Redis (`services.platform.request_gate`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

import httpx


class RequestGate(Protocol):
    """Hands out slots; `slot()` blocks until one is free."""

    def slot(self) -> AbstractContextManager[None]:
        """Hold a slot for one request."""
        ...


class GatedTransport(httpx.BaseTransport):
    """Each attempt waits for a slot of the connection's gate."""

    def __init__(self, inner: httpx.BaseTransport, gate: RequestGate) -> None:
        self.inner, self.gate = inner, gate

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.gate.slot():
            return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()
