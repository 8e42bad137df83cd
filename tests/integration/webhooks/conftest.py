"""Webhook tests: a migrated database (SQLite and PostgreSQL), Redis db 15, the API served by
a real uvicorn on a loopback port, real `rq worker` processes, the sandbox EHR as the sender
and a local HTTP receiver for outbound deliveries."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from holovitals_sync.api import create_api
from holovitals_sync.api.inbound import InboundFastPath
from holovitals_sync.db import session_scope
from holovitals_sync.models import Role
from tests.conftest import REDIS_TEST_URL
from tests.factories import make_token, make_user
from tests.loopback import serve
from tests.process_env import holovitals_env
from tests.waiting import wait_for

RQ = str(Path(sys.executable).parent / "rq")
QUEUES = [
    "webhooks.high",
    "webhooks.default",
    "webhooks.low",
    "sync.high",
    "sync.default",
    "sync.low",
]
MAX_BODY = 4096


@pytest.fixture
def wh_db(database_url: str, redis_client, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings for this process and the workers it starts."""
    with holovitals_env(
        monkeypatch,
        database_url,
        REDIS_TEST_URL,
        webhook_max_body_bytes=MAX_BODY,
        webhook_allow_hosts="127.0.0.1",
        retry_backoff=1,
    ) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Backend:
    url: str
    tokens: dict[str, str]
    # "ahead": the HTTP requests that reached the app behind the receiver, as method and path.
    behind: list[str] = field(default_factory=list)

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def inbound(self, connection_id: int) -> str:
        return f"{self.url}/api/webhooks/inbound/{connection_id}"


@pytest.fixture
def backend(wh_db: str, request: pytest.FixtureRequest) -> Iterator[Backend]:
    """create_api() in uvicorn on a free loopback port, in a thread of this process.

    Parametrised indirectly with "route", it serves the receiver through its FastAPI route
    instead of the `InboundFastPath` middleware that normally answers first; with "ahead",
    through `InboundFastPath` wrapped around the whole app, as under Reflex (`up`).
    """
    api = create_api()
    served: ASGIApp = api
    if getattr(request, "param", None) in ("route", "ahead"):
        api.user_middleware = [m for m in api.user_middleware if m.cls is not InboundFastPath]
    behind: list[str] = []
    if getattr(request, "param", None) == "ahead":

        async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                behind.append(f"{scope['method']} {scope['path']}")
            await api(scope, receive, send)

        served = InboundFastPath(recorded, api)
    tokens = {}
    with session_scope() as session:
        for role in Role:
            tokens[role.value] = make_token(session, make_user(session, role.value, role))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10)
    yield Backend(f"http://127.0.0.1:{port}", tokens, behind)
    server.should_exit = True
    thread.join(timeout=10)


class Workers:
    """`rq worker --with-scheduler` processes in their own process groups."""

    def __init__(self, log_dir: Path) -> None:
        self.procs: list[subprocess.Popen] = []
        self.log_dir = log_dir

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            argv = [
                RQ,
                "worker",
                "-c",
                "workers.settings",
                "-w",
                "workers.worker.HoloVitalsWorker",
                "--with-scheduler",
                *QUEUES,
            ]
            with open(self.log_dir / f"worker-{len(self.procs)}.log", "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        argv,
                        env=dict(os.environ),
                        start_new_session=True,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.log_dir.glob("worker-*.log"))


@pytest.fixture
def workers(wh_db: str, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    path: str = "/hook"


@dataclass
class Receiver:
    """A local subscriber endpoint: answers from `script` (then 200) and records requests."""

    url: str
    requests: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    delay: float = 0.0
    slow_paths: set[str] = field(default_factory=set)  # these answer after `delay`

    def at(self, path: str) -> str:
        return self.url.rsplit("/", 1)[0] + path

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append(
                Received(
                    time.monotonic(),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    self.path,
                )
            )
            if self.path in state.slow_paths:
                time.sleep(state.delay)
            status = state.script.pop(0) if state.script else 200
            payload = b'{"ok": true}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    with serve(Handler) as state.url:
        yield state
