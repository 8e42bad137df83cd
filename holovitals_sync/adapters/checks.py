""" "Test connection": discovery, token, CapabilityStatement, one Patient search.

Each step reports the vendor's own words (OAuth `error`/`error_description`, OperationOutcome
issue codes and diagnostics, cut short) so an administrator can act on them. No step reads
patient data: the Patient search asks for a count or a non-existent id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson

from holovitals_sync.adapters.profile import VendorProfile
from holovitals_sync.adapters.types import StepResult
from holovitals_sync.fhir.auth import SmartAuth
from holovitals_sync.fhir.client import FhirClient
from holovitals_sync.fhir.errors import FhirError, OperationOutcomeError

log = logging.getLogger(__name__)
PROBE_ID = "holovitals-connection-test"
_MAX_DETAIL = 300


def describe(exc: Exception) -> str:
    """The error as an administrator should read it: status, issue codes, vendor text."""
    if isinstance(exc, OperationOutcomeError) and exc.issues:
        said = "; ".join(
            f"{i.code}: {i.diagnostics}" if i.diagnostics else i.code for i in exc.issues
        )
        return f"HTTP {exc.status}: {said}"[:_MAX_DETAIL]
    return str(exc)[:_MAX_DETAIL]


def _discovery(client: FhirClient, profile: VendorProfile) -> str:
    core = client.core
    url = client.url(".well-known", "smart-configuration")
    response = core.send(
        core.build("GET", url, headers={"Accept": "application/json"}), authenticated=False
    )
    if not isinstance(core.auth, SmartAuth):
        return f"not needed for this auth method (HTTP {response.status_code})"
    core.raise_for_fhir(response)
    doc = orjson.loads(response.content)
    token_url = doc.get("token_endpoint")
    if not token_url:
        raise FhirError("smart-configuration names no token_endpoint", url=url)
    algs = set(doc.get("token_endpoint_auth_signing_alg_values_supported") or [])
    missing = [a for a in profile.signing_algs if algs and a not in algs]
    note = f"; server does not list {', '.join(missing)}" if missing else ""
    return f"token endpoint {token_url}{note}"


def _token(client: FhirClient) -> str:
    auth = client.core.auth
    if not isinstance(auth, SmartAuth):
        return "no token endpoint for this auth method"
    token = auth.token()
    return f"token obtained, lifetime {token.lifetime:.0f}s"


def _capability(client: FhirClient) -> str:
    # The statement is public on SMART servers: read it without the token first, so a
    # credentials problem shows only in the token step.
    core, url = client.core, client.url("metadata")
    response = core.send(core.build("GET", url), authenticated=False)
    statement = (
        orjson.loads(core.raise_for_fhir(response).content)
        if response.status_code < 400
        else client.capabilities()
    )
    version = statement.get("fhirVersion", "unknown")
    if not str(version).startswith("4."):
        raise FhirError(f"server speaks FHIR {version}, not R4", url=client.url("metadata"))
    software = (statement.get("software") or {}).get("name", "unnamed server")
    return f"FHIR {version}, {software}"


def _patient_search(
    client: FhirClient,
    profile: VendorProfile,
    extra: list[tuple[str, str]],
    vendor_params: dict[str, str],
) -> str:
    params = [*extra, ("_count", "1")]
    if profile.required_search_params.get("Patient"):
        # The vendor refuses an open Patient search; an id lookup proves access without PHI.
        params.append(("_id", vendor_params.get("test_patient_id", PROBE_ID)))
    bundle = next(client.search_pages("Patient", params))
    total = bundle.get("total")
    return f"Patient search answered ({total if total is not None else 'no'} total)"


def run_checks(
    client: FhirClient,
    profile: VendorProfile,
    extra: list[tuple[str, str]],
    vendor_params: dict[str, str],
) -> list[StepResult]:
    """Run every step, each on its own, so one failure does not hide the others."""
    steps: list[tuple[str, Callable[[], str]]] = [
        ("discovery", lambda: _discovery(client, profile)),
        ("token", lambda: _token(client)),
        ("capability_statement", lambda: _capability(client)),
        ("patient_search", lambda: _patient_search(client, profile, extra, vendor_params)),
    ]
    results = []
    for name, step in steps:
        try:
            results.append(StepResult(name, True, step()))
        except (FhirError, ValueError) as exc:
            log.info("connection test step %s failed: %s", name, type(exc).__name__)
            results.append(StepResult(name, False, describe(exc)))
    return results
