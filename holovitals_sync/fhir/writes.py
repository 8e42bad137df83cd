"""Writes: create, conditional create, versioned update, delete, batch and transaction.

A stale `If-Match` answers 412 (or 409 on vendors configured so) and raises
`PreconditionFailed`; the outbound sync then sends the record through conflict detection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from holovitals_sync.fhir.bundle import Resource, parse_bundle, parse_json
from holovitals_sync.fhir.errors import MalformedResponse
from holovitals_sync.fhir.ids import check_id, check_type

if TYPE_CHECKING:
    from holovitals_sync.fhir.transport import HttpCore

FHIR_JSON = "application/fhir+json"
_ETAG_RE = re.compile(r'^(?:W/)?"?([^"]*)"?$')
_LOCATION_RE = re.compile(
    r"/([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([A-Za-z0-9\-.]{1,64}))?/?$"
)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What the server answered to a write.

    Attributes:
        status: HTTP status (201 created, 200 updated or already existing).
        resource: The stored resource when the server returned it, else None.
        resource_id: The logical id (from Location, else the body).
        version_id: The new version (ETag, else Location, else meta.versionId).
        location: The Location header, if any.
    """

    status: int
    resource: Resource | None
    resource_id: str | None
    version_id: str | None
    location: str | None

    @property
    def created(self) -> bool:
        """True when the server created a resource (201)."""
        return self.status == 201


def etag_version(etag: str | None) -> str | None:
    """Extract the version id from an ETag such as `W/"3"`.

    Args:
        etag: The header value.

    Returns:
        The version id, or None.
    """
    if not etag:
        return None
    match = _ETAG_RE.match(etag.strip())
    return match.group(1) or None if match else None


def write_result(response: httpx.Response) -> WriteResult:
    """Build a `WriteResult` from a successful write response.

    Args:
        response: The 200/201 response, body read.

    Returns:
        The result.
    """
    url = str(response.request.url)
    resource = None
    if response.content.strip():
        body = parse_json(response.content, url=url)
        resource = body if isinstance(body, dict) and "resourceType" in body else None
    location = response.headers.get("Location") or response.headers.get("Content-Location")
    loc = _LOCATION_RE.search(httpx.URL(location).path) if location else None
    meta = (resource or {}).get("meta") or {}
    return WriteResult(
        status=response.status_code,
        resource=resource,
        resource_id=(loc.group(2) if loc else None) or (resource or {}).get("id"),
        version_id=etag_version(response.headers.get("ETag"))
        or (loc.group(3) if loc else None)
        or meta.get("versionId"),
        location=location,
    )


class FhirWriteMixin:
    """Write operations of `FhirClient` (needs `core` and `url`)."""

    core: HttpCore

    def url(self, *parts: str) -> str:  # pragma: no cover - provided by FhirClient
        raise NotImplementedError

    def _write(self, method: str, url: str, body: Any | None, headers: dict[str, str]) -> Any:
        content = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=representation", **headers}
        request = self.core.build(method, url, content=content, headers=headers)
        return self.core.raise_for_fhir(self.core.send(request))

    @staticmethod
    def _type_of(resource: Resource) -> str:
        if not isinstance(resource, dict) or "resourceType" not in resource:
            raise ValueError("resource must be a dict with a resourceType")
        return check_type(resource["resourceType"])

    def create(self, resource: Resource) -> WriteResult:
        """Create a resource (`POST [type]`); the server assigns the id.

        Args:
            resource: The resource (any `id` is ignored by the server).

        Returns:
            The created resource, its id and version.
        """
        url = self.url(self._type_of(resource))
        return write_result(self._write("POST", url, resource, {}))

    def conditional_create(self, resource: Resource, *, if_none_exist: str) -> WriteResult:
        """Create unless a match exists (`If-None-Exist`).

        Args:
            resource: The resource.
            if_none_exist: Search query without '?', e.g. `identifier=sys|val`.

        Returns:
            `created` is True on 201; 200 means a match already existed.

        Raises:
            PreconditionFailed: 412, the query matched more than one resource.
        """
        url = self.url(self._type_of(resource))
        response = self._write("POST", url, resource, {"If-None-Exist": if_none_exist})
        return write_result(response)

    def update(self, resource: Resource, *, if_match_version: str | None = None) -> WriteResult:
        """Update (`PUT [type]/[id]`), optionally only if the server still has that version.

        Args:
            resource: The resource, with its `id`.
            if_match_version: The versionId last seen; sent as `If-Match: W/"<vid>"`.

        Returns:
            The stored resource and its new version.

        Raises:
            PreconditionFailed: The server's version moved on (412, or 409 when configured).
        """
        resource_id = check_id(str(resource.get("id", "")))
        url = self.url(self._type_of(resource), resource_id)
        headers = {"If-Match": f'W/"{if_match_version}"'} if if_match_version else {}
        return write_result(self._write("PUT", url, resource, headers))

    def delete(
        self, resource_type: str, resource_id: str, *, if_match_version: str | None = None
    ) -> None:
        """Delete a resource (`DELETE [type]/[id]`), optionally only if the server still has
        that version.

        Args:
            resource_type: The type.
            resource_id: The id.
            if_match_version: The versionId last seen; sent as `If-Match: W/"<vid>"`.

        Raises:
            ResourceNotFound: The server answers 404/410 (many answer 200/204 instead).
            PreconditionFailed: The server's version moved on (412, or 409 when configured).
        """
        headers = {"If-Match": f'W/"{if_match_version}"'} if if_match_version else {}
        self._write(
            "DELETE", self.url(check_type(resource_type), check_id(resource_id)), None, headers
        )

    def _bundle_post(self, bundle: Resource, kind: str) -> Resource:
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise ValueError("expected a Bundle")
        bundle = {**bundle, "type": kind}
        response = self._write("POST", self.url(), bundle, {})
        url = str(response.request.url)
        result = parse_bundle(response.content, url=url)
        if result.get("type") != f"{kind}-response":
            raise MalformedResponse(f"{kind} to {url} did not answer a {kind}-response", url=url)
        return result

    def batch(self, bundle: Resource) -> Resource:
        """Post a batch Bundle; each entry succeeds or fails on its own.

        Args:
            bundle: A Bundle (its `type` is set to `batch`).

        Returns:
            The batch-response Bundle (check each `entry.response.status`).
        """
        return self._bundle_post(bundle, "batch")

    def transaction(self, bundle: Resource) -> Resource:
        """Post a transaction Bundle; all entries succeed or none.

        Args:
            bundle: A Bundle (its `type` is set to `transaction`).

        Returns:
            The transaction-response Bundle.
        """
        return self._bundle_post(bundle, "transaction")
