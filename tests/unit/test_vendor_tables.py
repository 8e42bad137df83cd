"""The sandbox's vendor tables and the adapters' vendor profiles, compared field by field.

Both are written from the vendors' documents (`docs/vendor-sources.md`) independently of
each other, so a wrong fact on either side shows up here as a disagreement instead of
agreeing with itself. Every vendor mode except `generic` is compared (the generic mode is
standard FHIR with every optional feature on, while the generic adapter reads its profile
from the server it talks to: there is no vendor document to agree on).

Compared, on each vendor (sandbox field -> adapter field):

- `display_name` -> `display_name`;
- `max_page_size` -> `max_page_size` (highest `_count` honoured);
- `required_search_params` -> `required_search_params`, per resource type, as sets;
- `supports_versioning` + `stale_version_status` -> `versioning` ("none",
  "if-match-412", "if-match-409");
- `last_updated_types` -> `supports_last_updated(type)`, per resource type the adapter
  reads or either side names;
- `token_auth_methods` -> `auth_methods` (token-endpoint names);
- `signing_algs` -> `signing_algs`, as sets;
- `jwks_url_required` -> `jwks_url_required`;
- `always_params` (name -> required prefix) -> `search_params` (name -> template; its
  fixed part before the first `{`);
- `max_search_matches` -> `max_search_matches`;
- `export_levels` -> `export_levels`, as sets;
- `patient_everything` -> `patient_everything`;
- `writes` -> `writes`, per resource type, create and update (the ops both can express);
- `repeat_ids_across_pages` -> `dedupe_ids`;
- `cursor_paging` -> `paging == "cursor"`;
- `notification` -> `notification`.

Not compared, because only one side expresses them:

- `export_one_at_a_time`, `notification_signature`: the adapter profile has no such
  field (its bulk client resumes the running export for every vendor instead of starting
  a second one; the inbound signature scheme is chosen per connection, not per vendor);
- `default_page_size`: the sandbox's is the server's default `_count`, the adapter's the
  `_count` it sends, two different things;
- `type_history`, `alphabetical_types`: sandbox-only (no vendor documents type-level
  `_history`; type order is a property of one server's CapabilityStatement);
- adapter-only fields (`base_url_template`, `admin_fields`, `scope_styles`, `token_params`,
  `resource_types`, `too_many_error`, `split_by_date`, `export_group_template`,
  `export_since`, `export_for_full_sync`, `incremental_fallback`, `requests_per_minute`,
  `token_requests_per_minute`, `sources`): how the adapter connects, plans and throttles,
  which the sandbox does not model per vendor (one base URL, both scope styles in every
  mode, `_since` always honoured, rate limits through its fault injection).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

from holovitals_sync.adapters.profile import VendorProfile as AdapterProfile
from holovitals_sync.adapters.registry import PROFILES as ADAPTER_PROFILES
from holovitals_sync.models.enums import AuthMethod
from holovitals_sync.sandbox import vendors
from holovitals_sync.sandbox.vendors import VendorProfile as SandboxProfile

VENDORS = sorted(name for name in ADAPTER_PROFILES if name != "generic")
SANDBOX_DIR = Path(vendors.__file__).resolve().parent
TOKEN_METHOD = {
    AuthMethod.SMART_BACKEND: "private_key_jwt",
    AuthMethod.CLIENT_SECRET_BASIC: "client_secret_basic",
    AuthMethod.CLIENT_SECRET_POST: "client_secret_post",
}
ALL_LEVELS = frozenset({"system", "patient", "group"})
WRITE_OPS = frozenset({"create", "update"})


def _versioning(s: SandboxProfile) -> str:
    return f"if-match-{s.stale_version_status}" if s.supports_versioning else "none"


def _required(s: SandboxProfile, a: AdapterProfile) -> tuple[object, object]:
    types = sorted(set(s.required_search_params) | set(a.required_search_params))
    return (
        {t: sorted(s.required_search_params.get(t, ())) for t in types},
        {t: sorted(a.required_search_params.get(t, ())) for t in types},
    )


def _last_updated(s: SandboxProfile, a: AdapterProfile) -> tuple[object, object]:
    types = (
        set(a.resource_types) | set(s.last_updated_types or ()) | set(a.last_updated_types or ())
    )
    lu = s.last_updated_types
    return (
        {t: lu is None or t in lu for t in sorted(types)},
        {t: a.supports_last_updated(t) for t in sorted(types)},
    )


def _always(s: SandboxProfile, a: AdapterProfile) -> tuple[object, object]:
    return (dict(s.always_params), {k: v.split("{", 1)[0] for k, v in a.search_params.items()})


def _writes(s: SandboxProfile, a: AdapterProfile) -> tuple[object, object]:
    sw = s.writes
    types = sorted(set(sw if sw is not None else ()) | set(a.writes))

    def sandbox_ops(t: str) -> list[str]:
        return sorted(op for op in WRITE_OPS if s.allows_write(t, op))

    return (
        {t: sandbox_ops(t) for t in types if sandbox_ops(t)},
        {t: sorted(a.writes[t]) for t in types if a.writes.get(t)},
    )


# field name -> (sandbox, adapter) -> (sandbox value, adapter value), in comparable form
COMPARED: dict[str, Callable[[SandboxProfile, AdapterProfile], tuple[object, object]]] = {
    "display_name": lambda s, a: (s.display_name, a.display_name),
    "max_page_size": lambda s, a: (s.max_page_size, a.max_page_size),
    "required_search_params": _required,
    "stale version (versioning)": lambda s, a: (_versioning(s), a.versioning),
    "last_updated_types": _last_updated,
    "token_auth_methods": lambda s, a: (
        sorted(s.token_auth_methods),
        sorted(TOKEN_METHOD.get(m, str(m)) for m in a.auth_methods),
    ),
    "signing_algs": lambda s, a: (sorted(s.signing_algs), sorted(a.signing_algs)),
    "jwks_url_required": lambda s, a: (s.jwks_url_required, a.jwks_url_required),
    "always_params (search_params)": _always,
    "max_search_matches": lambda s, a: (s.max_search_matches, a.max_search_matches),
    "export_levels": lambda s, a: (
        sorted(ALL_LEVELS if s.export_levels is None else s.export_levels),
        sorted(a.export_levels),
    ),
    "patient_everything": lambda s, a: (s.patient_everything, a.patient_everything),
    "writes": _writes,
    "repeat_ids_across_pages (dedupe_ids)": lambda s, a: (s.repeat_ids_across_pages, a.dedupe_ids),
    "cursor_paging (paging)": lambda s, a: (s.cursor_paging, a.paging == "cursor"),
    "notification": lambda s, a: (s.notification, a.notification),
}


def disagreements(
    sandbox: dict[str, SandboxProfile], adapters: dict[str, AdapterProfile]
) -> list[str]:
    """One line per vendor and field on which the two tables differ."""
    out: list[str] = []
    for vendor in sorted(adapters):
        s, a = sandbox[vendor], adapters[vendor]
        for name, compare in COMPARED.items():
            mine, theirs = compare(s, a)
            if isinstance(mine, dict) and isinstance(theirs, dict):
                # Per resource type: name the types that differ, not the whole table.
                for key in sorted(set(mine) | set(theirs)):
                    if mine.get(key) != theirs.get(key):
                        out.append(
                            f"{vendor}.{name}[{key}]: sandbox {mine.get(key)!r} "
                            f"!= adapter {theirs.get(key)!r}"
                        )
            elif mine != theirs:
                out.append(f"{vendor}.{name}: sandbox {mine!r} != adapter {theirs!r}")
    return out


def test_every_vendor_has_both_tables() -> None:
    assert sorted(n for n in vendors.PROFILES if n != "generic") == VENDORS


def test_sandbox_tables_agree_with_adapter_profiles() -> None:
    adapters = {n: ADAPTER_PROFILES[n] for n in VENDORS}
    found = disagreements(vendors.PROFILES, adapters)
    assert not found, (
        "sandbox vendor tables and adapter profiles disagree (decide from "
        "docs/vendor-sources.md which side is wrong):\n" + "\n".join(found)
    )


def test_a_wrong_profile_is_reported_by_vendor_and_field() -> None:
    from dataclasses import replace

    wrong = {
        **ADAPTER_PROFILES,
        "oracle_health": replace(
            ADAPTER_PROFILES["oracle_health"],
            versioning="if-match-412",
            max_page_size=100,
            last_updated_types=frozenset({"Observation"}),
        ),
    }
    found = disagreements(vendors.PROFILES, {n: wrong[n] for n in VENDORS})
    assert found == [
        "oracle_health.max_page_size: sandbox 200 != adapter 100",
        "oracle_health.stale version (versioning): sandbox 'if-match-409' != adapter "
        "'if-match-412'",
        *(
            f"oracle_health.last_updated_types[{t}]: sandbox True != adapter False"
            for t in (
                "AllergyIntolerance",
                "Condition",
                "DiagnosticReport",
                "Encounter",
                "Immunization",
                "MedicationRequest",
            )
        ),
    ]


def test_the_sandbox_does_not_import_the_adapters() -> None:
    offenders = []
    for path in sorted(SANDBOX_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.name}: {n}" for n in names if n.startswith("holovitals_sync.adapters")
            ]
    assert not offenders


def test_each_type_says_how_its_deletes_are_found() -> None:
    ecw, epic = ADAPTER_PROFILES["eclinicalworks"], ADAPTER_PROFILES["epic"]
    bulk = [t for t in ecw.resource_types if not ecw.supports_last_updated(t)]
    assert bulk and {ecw.delete_detection(t) for t in bulk} == {"export + sweep"}
    assert "export" not in {epic.delete_detection(t) for t in epic.resource_types}
