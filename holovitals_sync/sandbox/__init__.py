"""Sandbox EHR: a real FHIR R4 server on loopback standing in for hospital EHRs.

    from holovitals_sync.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(patients=500, seed=42)) as ehr:
        ehr.base_url      # http://127.0.0.1:<port>/fhir
        ehr.token_url     # http://127.0.0.1:<port>/fhir/auth/token
        ehr.set_faults(rate_limit_every=5, retry_after=0.2)

Foreground: `python -m holovitals_sync.sandbox --port 8090` or `serve(SandboxConfig(...))`.
"""

from holovitals_sync.sandbox.app import create_app
from holovitals_sync.sandbox.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    ClientRegistration,
    SandboxConfig,
)
from holovitals_sync.sandbox.faults import FaultConfig
from holovitals_sync.sandbox.server import SandboxServer, serve

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "ClientRegistration",
    "FaultConfig",
    "SandboxConfig",
    "SandboxServer",
    "create_app",
    "serve",
]
