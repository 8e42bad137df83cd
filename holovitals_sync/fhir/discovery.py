"""SMART endpoint discovery: where a connection gets its tokens.

`[base]/.well-known/smart-configuration` first (SMART App Launch 2.x); servers that predate it
advertise the token URL in the CapabilityStatement's `oauth-uris` security extension.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from holovitals_sync.fhir.errors import FhirError
from holovitals_sync.fhir.transport import HttpCore

log = logging.getLogger(__name__)

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def _get_json(core: HttpCore, url: str, accept: str) -> dict[str, Any] | None:
    response = core.send(core.build("GET", url, headers={"Accept": accept}), authenticated=False)
    if response.status_code != 200:
        return None
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def token_endpoint_from_capabilities(capabilities: dict[str, Any]) -> str | None:
    """Read the token URL from a CapabilityStatement's `oauth-uris` extension.

    Args:
        capabilities: The CapabilityStatement.

    Returns:
        The token URL, or None when not advertised.
    """
    rest = capabilities.get("rest") or []
    if not rest or not isinstance(rest[0], dict):
        return None
    for ext in (rest[0].get("security") or {}).get("extension") or []:
        if ext.get("url") != OAUTH_URIS:
            continue
        for inner in ext.get("extension") or []:
            if inner.get("url") == "token" and inner.get("valueUri"):
                return str(inner["valueUri"])
    return None


def discover_token_endpoint(core: HttpCore) -> str:
    """Find the token endpoint of the connection's server.

    Args:
        core: The connection's HTTP layer (requests go out without a token).

    Returns:
        The token endpoint URL.

    Raises:
        FhirError: Neither document names a token endpoint.
    """
    base = core.config.base
    smart = _get_json(core, f"{base}/.well-known/smart-configuration", "application/json")
    if smart and smart.get("token_endpoint"):
        return str(smart["token_endpoint"])
    log.info("no smart-configuration at %s; trying the CapabilityStatement", base)
    capabilities = _get_json(core, f"{base}/metadata", "application/fhir+json")
    token_url = token_endpoint_from_capabilities(capabilities or {})
    if token_url:
        return token_url
    raise FhirError(
        "no token endpoint found in smart-configuration or CapabilityStatement", url=base
    )
