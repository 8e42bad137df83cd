"""Outbound writes per vendor mode: accepted where the vendor takes them, refused before
any request where it does not, 412 and Oracle Health's 409 both as `RemoteChanged`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from holovitals_sync.adapters import RemoteChanged, WriteNotSupported, adapter_for
from holovitals_sync.adapters.generic import GenericAdapter
from holovitals_sync.adapters.profile import both
from holovitals_sync.fhir import ResourceNotFound
from tests.integration.adapters.conftest import VendorEnv

NEW = {
    "Condition": {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/pt-00001"},
        "code": {"text": "Seasonal allergic rhinitis"},
    },
    "QuestionnaireResponse": {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "subject": {"reference": "Patient/pt-00001"},
    },
}
REFUSED = [
    ("Observation", "update"),
    ("MedicationRequest", "update"),
    ("Patient", "update"),
    ("Practitioner", "create"),
]


def _current(env: VendorEnv, rtype: str) -> dict[str, Any]:
    rec = sorted(env.server.state.store.candidates(rtype, "pt-00003"), key=lambda r: r.id)[0]
    return rec.resource()


def test_allowed_write_is_accepted(env: VendorEnv) -> None:
    with adapter_for(env.spec) as adapter:
        writable = adapter.capabilities.writable
        if "Observation" in writable and "update" in writable["Observation"]:
            obs = _current(env, "Observation")
            obs["status"] = "amended"
            version = obs["meta"]["versionId"]
            outcome = adapter.write(obs, remote_version=version)
            assert outcome.status == 200 and outcome.resource_id == obs["id"]
            with pytest.raises(RemoteChanged) as caught:  # the EHR moved on since `version`
                adapter.write(obs, remote_version=version)
            assert caught.value.status == (409 if env.mode == "oracle_health" else 412)
            return
        creatable = [t for t in NEW if "create" in writable.get(t, [])]
        if not creatable:  # read-only over FHIR (Veradigm, NextGen): nothing to send
            assert not writable or env.mode == "meditech"
            return
        outcome = adapter.write(dict(NEW[creatable[0]]))
    assert outcome.created and outcome.resource_id
    assert env.server.state.store.get(creatable[0], outcome.resource_id) is not None


def test_refused_write_sends_no_request(env: VendorEnv) -> None:
    with adapter_for(env.spec) as adapter:
        writable = adapter.capabilities.writable  # generic: reads the server's statement
        rtype, op = next((t, o) for t, o in REFUSED if o not in writable.get(t, []))
        resource: dict[str, Any] = {"resourceType": rtype}
        if op == "update":
            resource["id"] = "pt-00001" if rtype == "Patient" else _current(env, rtype)["id"]
        env.server.reset()
        with pytest.raises(WriteNotSupported) as caught:
            adapter.write(resource, remote_version="1")
    assert caught.value.resource_type == rtype and caught.value.operation == op
    assert rtype in caught.value.reason
    assert env.fhir_requests() == []


def test_no_if_match_for_vendors_without_versioning(env_of: Any) -> None:
    env = env_of("generic")

    class Unversioned(GenericAdapter):
        @property
        def profile(self):  # noqa: ANN202 - as a no-version vendor that takes updates
            return replace(super().profile, versioning="none", writes=both("Observation"))

    obs = _current(env, "Observation")
    stale = str(int(obs["meta"]["versionId"]) - 1 or 0)
    with Unversioned(env.spec) as adapter:
        outcome = adapter.write(obs, remote_version=stale)  # standard server would say 412
    assert outcome.status == 200
    with adapter_for(env.spec) as adapter, pytest.raises(RemoteChanged):
        adapter.write(obs, remote_version=stale)


def test_delete_where_the_server_takes_it_refused_before_any_request_elsewhere(
    env: VendorEnv,
) -> None:
    obs = _current(env, "Observation")
    with adapter_for(env.spec) as adapter:
        takes = "delete" in adapter.capabilities.writable.get("Observation", [])
        assert takes == (env.mode == "generic")  # no named vendor takes FHIR deletes
        if not takes:
            env.server.reset()
            with pytest.raises(WriteNotSupported) as caught:
                adapter.delete("Observation", obs["id"], remote_version="1")
            assert (caught.value.resource_type, caught.value.operation) == ("Observation", "delete")
            assert "Observation" in caught.value.reason and env.fhir_requests() == []
            return
        version = obs["meta"]["versionId"]
        with pytest.raises(RemoteChanged):  # If-Match on a version the EHR moved on from
            adapter.delete("Observation", obs["id"], remote_version=str(int(version) - 1))
        assert not env.server.state.store.get("Observation", obs["id"]).deleted
        adapter.delete("Observation", obs["id"], remote_version=version)
        assert env.server.state.store.get("Observation", obs["id"]).deleted
        with pytest.raises(ResourceNotFound):
            adapter.delete("Observation", "never-existed", remote_version="1")
