"""Fixtures for driving the FHIR client against the sandbox EHR over real HTTP."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from holovitals_sync.fhir import ClientConfig, ClientSecret, FhirClient, RetryPolicy, Timeouts
from holovitals_sync.sandbox.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from holovitals_sync.sandbox.server import SandboxServer

# Re-exported here on purpose: the client tests get a session sandbox of their own, so their
# writes never change what the sandbox's own tests see.
from tests.fixtures.sandbox import *  # noqa: F401,F403

# Small delays so fault tests stay fast; Retry-After from the sandbox is still honoured.
FAST_RETRY = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, max_retry_after=5)
DEMO_SCOPE = "system/*.read system/*.write"


def demo_credentials(method: str = "client_secret_basic") -> ClientSecret:
    """The sandbox's demo client; token URL left to discovery."""
    return ClientSecret(
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        scope=DEMO_SCOPE,
        method=method,  # type: ignore[arg-type]
    )


def client_config(server: SandboxServer, **overrides: Any) -> ClientConfig:
    """A config for the sandbox with fast retries and short timeouts."""
    settings: dict[str, Any] = {
        "base_url": server.base_url,
        "retry": FAST_RETRY,
        "timeouts": Timeouts(connect=5, read=15, write=15, pool=15),
    }
    return ClientConfig(**(settings | overrides))


@pytest.fixture
def make_client(sandbox: SandboxServer) -> Iterator[Callable[..., FhirClient]]:
    """Factory of clients on the (reset) sandbox; all are closed after the test."""
    clients: list[FhirClient] = []

    def make(credentials: Any = "demo", **overrides: Any) -> FhirClient:
        creds = demo_credentials() if credentials == "demo" else credentials
        client = FhirClient(client_config(sandbox, **overrides), creds)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., FhirClient]) -> FhirClient:
    """A demo-client FhirClient on the sandbox."""
    return make_client()
