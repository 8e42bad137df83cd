"""Each sandbox mode refuses requests built the wrong way for that vendor, and adapters
written for one vendor fail against another vendor's mode where the two differ."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from holovitals_sync.adapters import ConnectionSpec, adapter_for
from holovitals_sync.fhir.errors import OperationOutcomeError
from tests.integration.adapters.conftest import VendorEnv

LU = {"_lastUpdated": "gt2020-01-01"}
WRONG: dict[str, list[tuple[str, str, dict[str, str]]]] = {
    "epic": [
        ("GET", "Observation", {}),
        ("GET", "$export", {}),
        ("GET", "Observation", {"patient": "pt-00001", **LU}),
    ],
    "oracle_health": [
        ("GET", "Observation", {}),
        ("GET", "Patient", {}),
        ("DELETE", "Observation/x", {}),
    ],
    "meditech": [("GET", "Observation", LU), ("POST", "Observation", {})],
    "veradigm": [("GET", "Condition", LU), ("GET", "$export", {}), ("POST", "Condition", {})],
    "nextgen": [("GET", "Group/all-patients/$export", {}), ("POST", "Observation", {})],
    "nextgen_office": [("GET", "Encounter", LU), ("PUT", "Patient/pt-00001", {})],
    "athenahealth": [
        ("GET", "Observation", {}),
        ("GET", "", {"_getpages": "x"}),
        ("GET", "Patient", {"ah-practice": "Practice-1"}),
    ],
    "eclinicalworks": [("GET", "Observation", LU), ("GET", "Patient/$export", {})],
    "generic": [("GET", "Observation", {"colour": "red"})],
}


def test_wrongly_built_requests_are_refused(env: VendorEnv) -> None:
    # Broad scopes, so a refused write is the vendor's rule and not a missing scope.
    spec = ConnectionSpec(**{**env.spec.__dict__, "scopes": ["system/*.read", "system/*.write"]})
    with adapter_for(spec) as adapter:
        client = adapter.client
        for method, path, params in WRONG[env.mode]:
            headers = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
            kwargs: dict[str, Any] = {"params": params, "headers": headers}
            if method in ("POST", "PUT"):
                kwargs["json"] = {"resourceType": path.split("/")[0], "id": "pt-00001"}
            with pytest.raises(OperationOutcomeError) as caught:
                client.request_json(
                    method, client.url(*path.split("/")) if path else client.url(), **kwargs
                )
            assert caught.value.status in (400, 405), (method, path)
            assert caught.value.issues and caught.value.issues[0].diagnostics


@pytest.mark.parametrize("mode", ["epic", "eclinicalworks", "veradigm", "oracle_health"])
def test_token_endpoint_enforces_the_vendor_auth(mode: str, env_of: Any) -> None:
    env = env_of(mode)
    # The demo client authenticates with a secret (Basic); key-only vendors refuse it.
    resp = httpx.post(
        env.server.token_url,
        data={"grant_type": "client_credentials"},
        auth=("holovitals-demo", "demo-secret"),
    )
    if mode == "oracle_health":
        assert resp.status_code == 200
    else:
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_client"


def test_epic_refuses_uploaded_keys_and_es384(env_of: Any) -> None:
    from tests.fixtures.sandbox import register_jwt_client

    env = env_of("epic")
    for alg in ("RS384", "ES384"):  # static JWKS (RS384) and ES384: both refused
        jwt_client = register_jwt_client(env.server, alg)
        resp = jwt_client.token_request()
        assert resp.status_code == 400, alg
        assert "Epic" in resp.json()["error_description"]


def _spec_for(env: VendorEnv, vendor: str, **params: str) -> ConnectionSpec:
    return ConnectionSpec(
        **{
            **env.spec.__dict__,
            "vendor": vendor,
            "vendor_params": {**env.spec.vendor_params, **params},
        }
    )


@pytest.mark.parametrize(
    ("adapter_vendor", "mode", "params", "action"),
    [
        ("generic", "epic", {}, "type"),  # searches Observation without `patient`
        ("nextgen", "oracle_health", {}, "type"),  # Enterprise searches are open
        ("athenahealth", "generic", {"practice_id": "1"}, "type"),  # ah-practice is not standard
        ("athenahealth", "epic", {"practice_id": "1"}, "type"),
        ("meditech", "epic", {}, "patient"),  # Epic offers no Patient/$everything
    ],
)
def test_adapter_fails_in_another_vendors_mode(
    adapter_vendor: str, mode: str, params: dict[str, str], action: str, env_of: Any
) -> None:
    env = env_of(mode)

    def run(spec: ConnectionSpec) -> int:
        with adapter_for(spec) as adapter:
            pages = (
                adapter.fetch_resource_type("Observation")
                if action == "type"
                else adapter.fetch_patient("pt-00001")
            )
            return sum(len(p.resources) for p in pages)

    with pytest.raises(OperationOutcomeError) as caught:
        run(_spec_for(env, adapter_vendor, **params))
    assert caught.value.status == 400
    assert run(env.spec) > 0  # the vendor's own adapter reads the same data


def test_oracle_health_repeats_ids_and_the_adapter_drops_them(env_of: Any) -> None:
    env = env_of("oracle_health")
    spec = ConnectionSpec(**{**env.spec.__dict__, "page_size": 5})
    with adapter_for(spec) as adapter:
        raw = [
            r["id"]
            for b in adapter.client.pages(
                adapter.client.url("Observation"), {"patient": "pt-00001", "_count": "5"}
            )
            for r in (e["resource"] for e in b["entry"])
        ]
        assert len(raw) > len(set(raw))  # the mode repeats ids across pages
        ids = [
            r["id"]
            for p in adapter.fetch_patient("pt-00001")
            for r in p.resources
            if r["resourceType"] == "Observation"
        ]
    assert len(ids) == len(set(ids)) == len(set(raw))


def test_oracle_health_resume_still_drops_a_repeat(env_of: Any) -> None:
    env = env_of("oracle_health")
    spec = ConnectionSpec(**{**env.spec.__dict__, "page_size": 5})
    with adapter_for(spec) as adapter:
        pages = adapter.fetch_resource_type("Observation")
        first = [next(pages) for _ in range(2)]
        rest = list(adapter.fetch_resource_type("Observation", resume=first[-1].checkpoint))
    ids = [r["id"] for p in [*first, *rest] for r in p.resources]
    assert "recent" in first[-1].checkpoint
    assert len(ids) == len(set(ids)) == len(env.hashes(["Observation"]))
