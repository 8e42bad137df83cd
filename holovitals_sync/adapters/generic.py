"""Generic FHIR R4 adapter (HAPI, Medplum, cloud FHIR stores): its profile is read from the
server's own CapabilityStatement and smart-configuration on first use.

Auth: none, a static bearer token, a client secret, or SMART Backend Services.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import orjson

from holovitals_sync.adapters import connect
from holovitals_sync.adapters.base import EHRAdapter
from holovitals_sync.adapters.profile import STANDARD_ALGS, ExportLevel, VendorProfile, WriteOp
from holovitals_sync.adapters.types import ConnectionSpec
from holovitals_sync.fhir.client import FhirClient
from holovitals_sync.models.enums import AuthMethod

log = logging.getLogger(__name__)

PROFILE = VendorProfile(
    name="generic",
    display_name="Generic FHIR R4",
    base_url_template="{base_url}",
    admin_fields=("base_url", "auth_method", "client_id", "client_secret or private_key"),
    auth_methods=tuple(AuthMethod),
    export_levels=("system", "patient", "group"),
    export_group_template="{group_id}",
    notification="unknown",
    sources={
        "base_url_template": "server",
        "admin_fields": "S1",
        "auth_methods": "S1",
        "signing_algs": "S1",
        "scope_styles": "S1",
        "writes": "CapabilityStatement",
        "export_levels": "S2 + CapabilityStatement",
        "last_updated_types": "CapabilityStatement",
        "versioning": "S4",
        "notification": "S3 + CapabilityStatement",
    },
)
WILDCARD = ["system/*.read", "system/*.write"]
_EXPORT_OPS: dict[str, ExportLevel] = {
    "export": "system",
    "patient-export": "patient",
    "group-export": "group",
}


def _writes(resources: list[dict[str, Any]]) -> dict[str, frozenset[WriteOp]]:
    out: dict[str, frozenset[WriteOp]] = {}
    for res in resources:
        codes = {i.get("code") for i in res.get("interaction") or []}
        ops = frozenset(op for op in ("create", "update", "delete") if op in codes)
        if ops:
            out[str(res.get("type"))] = ops  # type: ignore[assignment]
    return out


def _last_updated(resources: list[dict[str, Any]]) -> frozenset[str] | None:
    listed = {
        str(r.get("type"))
        for r in resources
        if any(p.get("name") == "_lastUpdated" for p in r.get("searchParam") or [])
    }
    # Many servers do not list common parameters at all: then assume the standard.
    return frozenset(listed) if listed else None


def _export_levels(rest: dict[str, Any]) -> tuple[ExportLevel, ...]:
    names = {str(op.get("name")) for op in rest.get("operation") or []}
    found = {_EXPORT_OPS[n] for n in names if n in _EXPORT_OPS}
    return tuple(level for level in ("system", "patient", "group") if level in found)


def profile_from_server(
    capabilities: dict[str, Any], smart: dict[str, Any] | None
) -> VendorProfile:
    """A profile describing what the server itself declares.

    Args:
        capabilities: The CapabilityStatement.
        smart: The smart-configuration document, if the server has one.

    Returns:
        The generic profile narrowed to the server's declarations.
    """
    rest = (capabilities.get("rest") or [{}])[0]
    resources = [r for r in rest.get("resource") or [] if isinstance(r, dict)]
    searchable = tuple(
        str(r["type"])
        for r in resources
        if any(i.get("code") == "search-type" for i in r.get("interaction") or [])
    )
    versions = {r.get("versioning") for r in resources if "versioning" in r}
    algs = tuple(
        a
        for a in STANDARD_ALGS
        if a
        in ((smart or {}).get("token_endpoint_auth_signing_alg_values_supported") or STANDARD_ALGS)
    )
    patient = next((r for r in resources if r.get("type") == "Patient"), {})
    return replace(
        PROFILE,
        resource_types=tuple(t for t in searchable if t != "Group") or PROFILE.resource_types,
        writes=_writes(resources),
        last_updated_types=_last_updated(resources),
        history_types=frozenset(
            str(r["type"])
            for r in resources
            if any(i.get("code") == "history-type" for i in r.get("interaction") or [])
        ),
        export_levels=_export_levels(rest),
        patient_everything=any(
            o.get("name") == "everything" for o in patient.get("operation") or []
        ),
        versioning="none" if versions == {"no-version"} else "if-match-412",
        signing_algs=algs or STANDARD_ALGS,
        notification="subscriptions"
        if any(r.get("type") == "Subscription" for r in resources)
        else "none",
        export_since=bool(_export_levels(rest)),
    )


class GenericAdapter(EHRAdapter):
    """Any standards-compliant FHIR R4 server, configured from its own declarations."""

    PROFILE = PROFILE

    def __init__(self, spec: ConnectionSpec):
        super().__init__(spec)
        self._resolved: VendorProfile | None = None

    @property
    def client(self) -> FhirClient:
        """The client, built on the open profile (the server's own is not known yet)."""
        if self._client is None:
            # The token is needed before the server's types are known: ask in SMART v1
            # wildcards, which every SMART server understands; the EHR narrows the grant.
            spec = self.spec if self.spec.scopes else replace(self.spec, scopes=WILDCARD)
            self._client = connect.build_client(spec, PROFILE)
        return self._client

    @classmethod
    def known_profile(cls, vendor_params: dict[str, Any]) -> VendorProfile | None:
        """None: what a generic server takes is in its CapabilityStatement, read on use."""
        del vendor_params
        return None

    def vendor_profile(self) -> VendorProfile:
        """The server's declared profile (read once per adapter)."""
        if self._resolved is None:
            self._resolved = profile_from_server(self.client.capabilities(), self._smart())
            log.info(
                "generic server profile: %d types, export %s",
                len(self._resolved.resource_types),
                self._resolved.export_levels,
            )
        return self._resolved

    def _smart(self) -> dict[str, Any] | None:
        core = self.client.core
        url = self.client.url(".well-known", "smart-configuration")
        response = core.send(
            core.build("GET", url, headers={"Accept": "application/json"}), authenticated=False
        )
        if response.status_code != 200:
            return None
        try:
            doc = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None
        return doc if isinstance(doc, dict) else None
