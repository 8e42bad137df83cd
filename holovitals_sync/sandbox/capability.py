"""Discovery documents: the CapabilityStatement and SMART configuration (both open)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from holovitals_sync.sandbox.auth import ALGORITHMS, TOKEN_PATH
from holovitals_sync.sandbox.operations import SUPPORTED_TYPES
from holovitals_sync.sandbox.responses import fhir_json
from holovitals_sync.sandbox.search import TOKEN_PARAMS

_EXPORT_OPS = (("system", "export"), ("patient", "patient-export"), ("group", "group-export"))
_INTERACTIONS = ["read", "vread", "history-instance", "search-type", "create", "update", "delete"]


def _origin(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _resource(sb, rtype: str) -> dict:
    params = [{"name": "_id", "type": "token"}, {"name": "_count", "type": "number"}]
    lu = sb.profile.last_updated_types
    if lu is None or rtype in lu:
        params.append({"name": "_lastUpdated", "type": "date"})
    if rtype != "Patient":
        params += [
            {"name": "patient", "type": "reference"},
            {"name": "subject", "type": "reference"},
        ]
    params += [{"name": name, "type": "token"} for name in sorted(TOKEN_PARAMS)]
    writes = {"create", "update", "delete"}
    codes = [c for c in _INTERACTIONS if c not in writes or sb.profile.allows_write(rtype, c)]
    if sb.profile.type_history:
        codes.append("history-type")
    out = {
        "type": rtype,
        "versioning": "versioned-update" if sb.profile.supports_versioning else "no-version",
        "readHistory": True,
        "conditionalCreate": True,
        "interaction": [{"code": c} for c in codes],
        "searchParam": params,
    }
    if rtype == "Patient" and sb.profile.patient_everything:
        out["operation"] = [
            {
                "name": "everything",
                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            }
        ]
    return out


def _listed(sb) -> list[str]:
    return sorted(SUPPORTED_TYPES) if sb.profile.alphabetical_types else list(SUPPORTED_TYPES)


async def metadata(request: Request) -> Response:
    sb = request.app.state.sandbox
    token_url = _origin(request) + TOKEN_PATH
    export_def = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
    return fhir_json(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "kind": "instance",
            "date": "2026-11-26",
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "software": {"name": "HoloVitals Sync sandbox EHR", "version": sb.profile.name},
            "implementation": {
                "description": "Synthetic FHIR R4 EHR for tests",
                "url": _origin(request) + "/fhir",
            },
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "service": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                        "code": "SMART-on-FHIR",
                                    }
                                ]
                            }
                        ],
                        "extension": [
                            {
                                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                                "extension": [{"url": "token", "valueUri": token_url}],
                            }
                        ],
                    },
                    "resource": [_resource(sb, t) for t in _listed(sb)],
                    "interaction": [{"code": "batch"}, {"code": "transaction"}],
                    "operation": [
                        {"name": name, "definition": export_def + name}
                        for level, name in _EXPORT_OPS
                        if sb.profile.export_levels is None or level in sb.profile.export_levels
                    ],
                }
            ],
        }
    )


def _capabilities(methods: frozenset[str]) -> list[str]:
    out = ["client-confidential-asymmetric"] if "private_key_jwt" in methods else []
    if methods & {"client_secret_basic", "client_secret_post"}:
        out.append("client-confidential-symmetric")
    return [*out, "permission-v1", "permission-v2"]


async def smart_configuration(request: Request) -> Response:
    sb = request.app.state.sandbox
    scopes = sorted(
        {s for c in sb.auth.clients.values() for s in c.scopes}
        | {"system/*.read", "system/*.rs", "system/*.write", "system/*.cud"}
    )
    return JSONResponse(
        {
            "issuer": _origin(request) + "/fhir",
            "token_endpoint": _origin(request) + TOKEN_PATH,
            "token_endpoint_auth_methods_supported": sorted(sb.profile.token_auth_methods),
            "token_endpoint_auth_signing_alg_values_supported": [
                a for a in ALGORITHMS if a in sb.profile.signing_algs
            ],
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": scopes,
            "capabilities": _capabilities(sb.profile.token_auth_methods),
        }
    )
