"""Profiles: every documented fact is data, each vendor differs where the facts differ."""

from __future__ import annotations

import pytest

from holovitals_sync.adapters import PROFILES, ConfigurationError, ConnectionSpec, adapter_for
from holovitals_sync.adapters.connect import credentials_for, default_scopes, render
from holovitals_sync.adapters.generic import profile_from_server
from holovitals_sync.adapters.plan import full_tasks, incremental_method, incremental_tasks
from holovitals_sync.adapters.registry import ADAPTERS, known_profile
from holovitals_sync.fhir.keys import generate_key_pair
from holovitals_sync.models.enums import AuthMethod, Vendor

FIELDS_CITED = {"auth_methods", "writes", "last_updated_types", "export_levels"}


def test_every_vendor_has_an_adapter_and_profile() -> None:
    assert set(ADAPTERS) == {v.value for v in Vendor}
    for name, cls in ADAPTERS.items():
        assert cls.PROFILE.name == name
    classes = [cls for cls in ADAPTERS.values()]
    assert len(set(classes)) == len(classes)  # no adapter is another's alias


@pytest.mark.parametrize("name", [n for n in PROFILES if n != "generic"])
def test_vendor_profiles_cite_their_sources(name: str) -> None:
    profile = PROFILES[name]
    for field in FIELDS_CITED & set(profile.sources):
        assert profile.source(field) != "default"
    assert profile.source("auth_methods") != "default"


def test_documented_differences_are_in_the_data() -> None:
    p = PROFILES
    assert p["epic"].signing_algs == ("RS384",) and p["epic"].max_search_matches == 100
    assert p["oracle_health"].versioning == "if-match-409" and p["oracle_health"].dedupe_ids
    assert p["oracle_health"].max_page_size == 200
    assert p["eclinicalworks"].requests_per_minute == 250
    assert p["athenahealth"].token_requests_per_minute == 50
    assert "ah-practice" in p["athenahealth"].search_params
    assert p["veradigm"].writes == {} and p["veradigm"].versioning == "none"
    assert p["nextgen"].last_updated_types is None
    assert p["nextgen_office"].last_updated_types == frozenset()
    for name in ("epic", "meditech", "veradigm", "eclinicalworks", "nextgen_office"):
        assert not p[name].supports_last_updated("Observation"), name


def test_incremental_methods_follow_the_vendor_facts() -> None:
    p = PROFILES
    assert incremental_method(p["eclinicalworks"], "Observation") == "bulk_since"
    assert incremental_method(p["epic"], "Observation") == "patient_requery"
    assert incremental_method(p["athenahealth"], "Observation") == "_lastUpdated"
    assert incremental_method(p["athenahealth"], "Patient") == "patient_requery"
    tasks = incremental_tasks(
        p["oracle_health"],
        ["Patient", "Observation"],
        {"Patient": "2026-01-01T00:00:00.000Z", "Observation": "2026-01-01T00:00:00.000Z"},
    )
    # Oracle Health searches need the patient, with _lastUpdated where it is supported.
    assert [(t.kind, t.types, bool(t.since)) for t in tasks] == [
        ("patients", ("Observation",), True),
        ("patients", ("Patient",), False),
    ]


def test_full_sync_methods() -> None:
    assert full_tasks(PROFILES["epic"], ["Observation"])[0].kind == "export"
    assert [t.kind for t in full_tasks(PROFILES["athenahealth"], ["Patient", "Encounter"])] == [
        "search",
        "search",
    ]
    assert PROFILES["nextgen"].full_sync_method == "search"
    assert PROFILES["epic"].full_sync_method == "export:group"


def test_default_scopes_follow_the_scope_style_and_writes() -> None:
    scopes = default_scopes(PROFILES["athenahealth"])
    assert "system/Observation.rs" in scopes and "system/QuestionnaireResponse.c" in scopes
    assert not any(s.startswith("system/Observation.c") for s in scopes)


def test_credentials_are_checked_against_the_vendor() -> None:
    ec_key = generate_key_pair("ES384")
    spec = ConnectionSpec(
        vendor="epic",
        base_url="https://ehr.example/fhir",
        client_id="c",
        private_key_pem=ec_key.private_key_pem,
    )
    with pytest.raises(ConfigurationError, match="RS384"):
        credentials_for(spec, PROFILES["epic"])
    secret = ConnectionSpec(
        vendor="eclinicalworks",
        base_url="https://x.example/fhir",
        client_id="c",
        client_secret="s",
        auth_method=AuthMethod.CLIENT_SECRET_BASIC,
    )
    with pytest.raises(ConfigurationError, match="smart_backend"):
        credentials_for(secret, PROFILES["eclinicalworks"])


def test_templates_need_their_settings_and_never_echo_values() -> None:
    assert render("r4/{tenant_id}", {"tenant_id": "abc"}, what="x") == "r4/abc"
    with pytest.raises(ConfigurationError, match="tenant_id"):
        render("r4/{tenant_id}", {}, what="the base URL")
    spec = ConnectionSpec(
        vendor="oracle_health",
        base_url="",
        client_id="c",
        client_secret="s",
        auth_method=AuthMethod.CLIENT_SECRET_BASIC,
        vendor_params={"tenant_id": "ec2458f2"},
    )
    with adapter_for(spec) as adapter:
        assert adapter.client.config.base == "https://fhir-ehr.cerner.com/r4/ec2458f2"
        assert adapter.client.config.conflict_is_precondition


def test_unknown_vendor_and_product() -> None:
    with pytest.raises(ConfigurationError):
        adapter_for(ConnectionSpec(vendor="nope", base_url="https://x.example"))
    bad = ConnectionSpec(
        vendor="nextgen", base_url="https://x.example", vendor_params={"product": "cloud"}
    )
    with pytest.raises(ConfigurationError, match="enterprise"):
        _ = adapter_for(bad).profile


def test_connection_test_reports_configuration_without_secrets() -> None:
    spec = ConnectionSpec(
        vendor="epic",
        base_url="https://ehr.example/fhir",
        client_id="c",
        private_key_pem="-----BEGIN PRIVATE KEY-----\nsecretish\n",
    )
    steps = adapter_for(spec).test_connection()
    assert [(s.name, s.ok) for s in steps] == [("configuration", False)]
    assert "secretish" not in steps[0].detail
    no_group = ConnectionSpec(
        vendor="athenahealth",
        base_url="",
        client_id="c",
        client_secret="s",
        auth_method=AuthMethod.CLIENT_SECRET_BASIC,
    )
    steps = adapter_for(no_group).test_connection()
    assert not steps[0].ok and "practice_id" in steps[0].detail


def test_deletes_are_what_the_vendor_takes_and_known_without_a_request() -> None:
    # No named vendor takes a FHIR delete (docs/vendor-sources.md); the refusal names the
    # vendor, the type and the source.
    for name in (n for n in PROFILES if n != "generic"):
        refusal = PROFILES[name].write_refusal("Observation", "delete")
        assert refusal and PROFILES[name].display_name in refusal and "Observation" in refusal
    assert PROFILES["epic"].write_refusal("Observation", "delete") == (
        "Epic takes only create/update of Observation, not delete [E1]"
    )
    assert known_profile("epic", {}) is PROFILES["epic"]
    assert known_profile("nextgen", {"product": "office"}) is PROFILES["nextgen_office"]
    assert known_profile("generic", {}) is None  # the server's statement says, on use
    with pytest.raises(ConfigurationError):
        known_profile("nextgen", {"product": "neither"})
    # A generic server declares deletes per type in its CapabilityStatement.
    statement = {
        "rest": [
            {
                "resource": [
                    {
                        "type": "Observation",
                        "interaction": [
                            {"code": c}
                            for c in ("read", "search-type", "create", "update", "delete")
                        ],
                    },
                    {
                        "type": "Patient",
                        "interaction": [{"code": c} for c in ("read", "search-type", "update")],
                    },
                ]
            }
        ]
    }
    server = profile_from_server(statement, None)
    assert server.write_ops("Observation") == {"create", "update", "delete"}
    assert server.write_refusal("Observation", "delete") is None
    assert server.write_refusal("Patient", "delete") == (
        "Generic FHIR R4 takes only update of Patient, not delete [CapabilityStatement]"
    )
