"""One sandbox per vendor mode (started on first use), registered clients, a spec factory.

Each vendor's client authenticates the way that vendor takes: a JWKS URL served by a tiny
local HTTP server for Epic, Veradigm and eClinicalWorks; a private key or a secret for
the others. The same local server records webhook deliveries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from holovitals_sync.adapters import PROFILES, ConnectionSpec, content_hash
from holovitals_sync.adapters.profile import VendorProfile
from holovitals_sync.fhir.keys import KeyPair, generate_key_pair
from holovitals_sync.models.enums import AuthMethod
from holovitals_sync.sandbox import SandboxConfig, SandboxServer

# Sandbox mode -> (adapter vendor, vendor_params). NextGen's two products share an adapter.
MODES: dict[str, tuple[str, dict[str, str]]] = {
    "epic": ("epic", {"group_id": "all-patients"}),
    "oracle_health": ("oracle_health", {"group_id": "all-patients", "tenant_id": "t1"}),
    "meditech": ("meditech", {"group_id": "all-patients"}),
    "veradigm": ("veradigm", {"group_id": "all-patients"}),
    "nextgen": ("nextgen", {"product": "enterprise"}),
    "nextgen_office": ("nextgen", {"product": "office", "group_id": "all-patients"}),
    "athenahealth": ("athenahealth", {"practice_id": "195900"}),
    "eclinicalworks": ("eclinicalworks", {"group_id": "all-patients"}),
    "generic": ("generic", {"group_id": "all-patients"}),
}
PATIENTS = 6
CLINICAL = [
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "DiagnosticReport",
]


@dataclass
class Receiver:
    """Serves JWKS documents and records webhook POSTs."""

    origin: str
    jwks: dict[str, dict[str, Any]] = field(default_factory=dict)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = json.dumps(receiver.jwks.get(self.path.strip("/"), {})).encode()
            self.send_response(200 if self.path.strip("/") in receiver.jwks else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.received.append((dict(self.headers.items()), raw))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)  # type: ignore[arg-type]
    recv = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(recv)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield recv
    server.shutdown()


@dataclass
class VendorEnv:
    """A sandbox in one vendor mode plus a ConnectionSpec that suits it."""

    mode: str
    server: SandboxServer
    spec: ConnectionSpec
    key: KeyPair | None

    @property
    def profile(self) -> VendorProfile:
        return PROFILES[self.mode]

    def fhir_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.server.stats()["recent"] if r["path"].startswith("/fhir")]

    def hashes(self, types: list[str]) -> dict[str, str]:
        store = self.server.state.store
        return {
            f"{t}/{rec.id}": content_hash(rec.resource())
            for t in types
            for rec in store.candidates(t)
        }


def _register(
    server: SandboxServer, mode: str, receiver: Receiver
) -> tuple[AuthMethod, str | None, KeyPair | None]:
    profile = PROFILES[mode]
    method = profile.auth_methods[0]
    client_id = f"holovitals-{mode}"
    scopes = ["system/*.read", "system/*.write"]
    if method is AuthMethod.SMART_BACKEND:
        key = generate_key_pair(profile.signing_algs[0])
        if profile.jwks_url_required:
            receiver.jwks[client_id] = key.jwks
            server.register_client(client_id, scopes, jwks_url=f"{receiver.origin}/{client_id}")
        else:
            server.register_client(client_id, scopes, jwks=key.jwks)
        return method, None, key
    secret = f"secret-{mode}"
    server.register_client(client_id, scopes, secret=secret)
    return method, secret, None


@pytest.fixture(scope="session")
def vendor_envs(receiver: Receiver) -> Iterator[dict[str, VendorEnv]]:
    envs: dict[str, VendorEnv] = {}
    yield envs
    for env in envs.values():
        env.server.stop()


def start_env(mode: str, envs: dict[str, VendorEnv], receiver: Receiver) -> VendorEnv:
    """The sandbox of a mode (started once per session) with its client registered."""
    if mode not in envs:
        server = SandboxServer(
            SandboxConfig(patients=PATIENTS, seed=77, vendor=mode, export_polls_before_complete=0)
        ).start()
        method, secret, key = _register(server, mode, receiver)
        vendor, params = MODES[mode]
        spec = ConnectionSpec(
            vendor=vendor,
            base_url=server.base_url,
            client_id=f"holovitals-{mode}",
            auth_method=method,
            client_secret=secret,
            private_key_pem=key.private_key_pem if key else None,
            vendor_params=dict(params),
        )
        envs[mode] = VendorEnv(mode, server, spec, key)
    env = envs[mode]
    env.server.reset()
    return env


@pytest.fixture(params=list(MODES))
def env(
    request: pytest.FixtureRequest, vendor_envs: dict[str, VendorEnv], receiver: Receiver
) -> VendorEnv:
    return start_env(request.param, vendor_envs, receiver)


@pytest.fixture
def env_of(vendor_envs: dict[str, VendorEnv], receiver: Receiver) -> Callable[[str], VendorEnv]:
    """env_of("epic") -> that mode's VendorEnv."""
    return lambda mode: start_env(mode, vendor_envs, receiver)
