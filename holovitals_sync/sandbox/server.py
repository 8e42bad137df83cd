"""Running the sandbox: `serve()` blocks; `SandboxServer` runs it in a thread for tests."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from holovitals_sync.sandbox.app import create_app
from holovitals_sync.sandbox.auth import TOKEN_PATH
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.faults import FaultConfig
from holovitals_sync.sandbox.state import Sandbox

log = logging.getLogger(__name__)
DEFAULT_PORT = 8090


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))  # port 0: the OS picks a free one, known before start
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def _uvicorn(app: Any, host: str, port: int) -> uvicorn.Server:
    # No access log: URLs carry patient ids. Lifespan off: the app has no startup hooks.
    cfg = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
        timeout_graceful_shutdown=3,
    )
    return uvicorn.Server(cfg)


def serve(config: SandboxConfig | None = None, port_file: str | Path | None = None) -> None:
    """Run the sandbox in the foreground until interrupted (Ctrl-C / SIGTERM).

    port 0 picks a free port; port_file, if given, receives the port number once the
    data is generated and the socket listens (how a parent process learns it).
    """
    config = config or SandboxConfig(port=DEFAULT_PORT)
    sock = _bind(config.host, config.port)
    port = sock.getsockname()[1]
    app = create_app(config)
    log.info(
        "sandbox EHR serving http://%s:%d/fhir (%d patients, seed %d, vendor %s)",
        config.host,
        port,
        config.patients,
        config.seed,
        config.vendor,
    )
    if port_file:
        Path(port_file).write_text(str(port))
    _uvicorn(app, config.host, port).run(sockets=[sock])


class SandboxServer:
    """The sandbox on 127.0.0.1 in a background thread, with admin helpers.

    with SandboxServer(SandboxConfig(patients=50)) as sb:
        httpx.get(f"{sb.base_url}/metadata")
    """

    def __init__(
        self, config: SandboxConfig | None = None, *, in_subprocess: bool = False, **overrides: Any
    ) -> None:
        """in_subprocess=True runs the server in its own Python process (benchmarks: no
        GIL shared with the client); `.state` is then unavailable."""
        config = config or SandboxConfig()
        self.config = config.model_copy(update=overrides) if overrides else config
        self.in_subprocess = in_subprocess
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen | None = None
        self.port = 0
        self.app: Any = None
        self._admin: httpx.Client | None = None

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> SandboxServer:
        if self.in_subprocess:
            self._start_process(timeout)
        else:
            self._start_thread()
        self._admin = httpx.Client(base_url=self.origin, timeout=30.0)
        self._wait_ready(timeout)
        return self

    def _start_process(self, timeout: float) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            port_file = Path(tmp) / "port"
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "holovitals_sync.sandbox",
                    "--quiet",
                    "--config-json",
                    self.config.model_dump_json(),
                    "--port-file",
                    str(port_file),
                ]
            )
            deadline = time.monotonic() + timeout
            while not port_file.exists() or not port_file.read_text():
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("sandbox subprocess did not start")
                time.sleep(0.02)
            self.port = int(port_file.read_text())

    def _start_thread(self) -> None:
        sock = _bind(self.config.host, self.config.port)
        self.port = sock.getsockname()[1]
        self.app = create_app(self.config)
        self._server = _uvicorn(self.app, self.config.host, self.port)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self._admin.get("/fhir/metadata").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("sandbox did not answer /fhir/metadata in time")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._admin is not None:
            self._admin.close()
        self._server = self._thread = self._admin = self._process = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- addresses ----------------------------------------------------------------------
    @property
    def origin(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.origin}{TOKEN_PATH}"

    @property
    def state(self) -> Sandbox:
        """In-process access to store, auth, faults (thread mode only)."""
        if self.app is None:
            raise RuntimeError("sandbox state is only reachable in thread mode")
        return self.app.sandbox

    # ---- admin helpers ------------------------------------------------------------------
    def _call(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._admin.request(method, path, **kw)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def set_faults(self, faults: FaultConfig | dict[str, Any] | None = None, **kw: Any) -> dict:
        body = faults.model_dump() if isinstance(faults, FaultConfig) else dict(faults or {})
        return self._call("PUT", "/_sandbox/faults", json={**body, **kw})

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sandbox/faults")

    def register_client(
        self,
        client_id: str,
        scopes: list[str] | None = None,
        secret: str | None = None,
        jwks: dict | None = None,
        jwks_url: str | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "client_id": client_id,
            "secret": secret,
            "jwks": jwks,
            "jwks_url": jwks_url,
        }
        if scopes is not None:
            body["scopes"] = scopes
        self._call("POST", "/_sandbox/clients", json=body)

    def expire_tokens(self) -> int:
        return self._call("POST", "/_sandbox/tokens/expire")["expired"]

    def configure(self, **settings: Any) -> dict:
        """Runtime settings, e.g. token_lifetime_seconds=2, export_polls_before_complete=0."""
        return self._call("PATCH", "/_sandbox/config", json=settings)

    def clinic_day(self, changes: int = 20, seed: int | None = None) -> dict:
        params: dict[str, Any] = {"changes": changes}
        if seed is not None:
            params["seed"] = seed
        return self._call("POST", "/_sandbox/clinic-day", params=params)

    def stats(self) -> dict:
        return self._call("GET", "/_sandbox/stats")

    def seed(self, resources: list[tuple[str, str, Any]]) -> list[str]:
        """Serve raw bodies, broken ones included, as (type, id, body); returns type/id."""
        body = {"resources": [{"type": t, "id": i, "body": b} for t, i, b in resources]}
        return self._call("POST", "/_sandbox/resources", json=body)["seeded"]

    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset")

    def notify(self, url: str, secret: str, **kw: Any) -> dict:
        return self._call("POST", "/_sandbox/notify", json={"url": url, "secret": secret, **kw})

    def token(
        self,
        client_id: str = "holovitals-demo",
        secret: str = "demo-secret",
        scope: str | None = None,
    ) -> str:
        """A bearer token via client_secret_basic (the demo client by default)."""
        data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        resp = self._admin.post(TOKEN_PATH, data=data, auth=(client_id, secret))
        resp.raise_for_status()
        return resp.json()["access_token"]
