"""Reading Bundles: parse a page strictly, pick its entries, find its next link.

A page is parsed and checked in full before anything in it is handed out, so a malformed page
contributes nothing to a caller that stores resources as they come.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import orjson

from holovitals_sync.fhir.errors import MalformedResponse

log = logging.getLogger(__name__)

Resource = dict[str, Any]


def parse_json(content: bytes, *, url: str) -> Any:
    """Parse a JSON body with orjson.

    Args:
        content: The raw body.
        url: The URL it came from (named in the error).

    Returns:
        The decoded value.

    Raises:
        MalformedResponse: The body is not valid JSON.
    """
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        # The position helps; the body itself may hold PHI and stays out of the message.
        raise MalformedResponse(f"invalid JSON from {url} at byte {exc.pos}", url=url) from None


def parse_resource(content: bytes, *, url: str, resource_type: str | None = None) -> Resource:
    """Parse a resource body and check its `resourceType`.

    Args:
        content: The raw body.
        url: The URL it came from.
        resource_type: The expected type, or None for any resource.

    Returns:
        The resource.
    """
    data = parse_json(content, url=url)
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise MalformedResponse(f"response from {url} is not a FHIR resource", url=url)
    if resource_type and data["resourceType"] != resource_type:
        raise MalformedResponse(
            f"expected {resource_type} from {url}, got {data['resourceType']}", url=url
        )
    return data


def parse_bundle(content: bytes, *, url: str) -> Resource:
    """Parse and check a Bundle page.

    Args:
        content: The raw body.
        url: The page URL (named in any error).

    Returns:
        The Bundle.

    Raises:
        MalformedResponse: Not JSON, not a Bundle, or `entry`/`link` of the wrong shape.
    """
    bundle = parse_resource(content, url=url, resource_type="Bundle")
    entries = bundle.get("entry", [])
    links = bundle.get("link", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise MalformedResponse(f"Bundle from {url} has a malformed entry list", url=url)
    if not isinstance(links, list) or not all(isinstance(lk, dict) for lk in links):
        raise MalformedResponse(f"Bundle from {url} has a malformed link list", url=url)
    for index, entry in enumerate(entries):
        resource = entry.get("resource")
        if resource is not None and not (
            isinstance(resource, dict) and isinstance(resource.get("resourceType"), str)
        ):
            raise MalformedResponse(f"Bundle from {url}: entry {index} is not a resource", url=url)
    return bundle


def next_link(bundle: Resource, *, page_url: str) -> str | None:
    """Return the `next` link exactly as given (relative links resolved against the page).

    Args:
        bundle: The Bundle page.
        page_url: The URL the page was fetched from.

    Returns:
        The absolute next URL, or None on the last page.
    """
    for link in bundle.get("link", []):
        if link.get("relation") == "next" and link.get("url"):
            url = str(link["url"])
            if url.startswith(("http://", "https://")):
                return url
            return str(httpx.URL(page_url).join(url))
    return None


def matches(bundle: Resource, *, include: bool = False) -> Iterator[Resource]:
    """Yield the resources of a search page.

    Entries with `search.mode` 'match' or no mode are yielded; 'include' entries only when
    asked; 'outcome' entries (OperationOutcome warnings) are logged by issue code only.

    Args:
        bundle: A searchset Bundle.
        include: Also yield `_include`/`_revinclude` entries.

    Yields:
        Resources in page order.
    """
    for entry in bundle.get("entry", []):
        resource = entry.get("resource")
        if resource is None:
            continue
        mode = (entry.get("search") or {}).get("mode", "match")
        if mode == "match" or (mode == "include" and include):
            yield resource
        elif mode == "outcome":
            codes = [f"{i.get('severity')}/{i.get('code')}" for i in resource.get("issue", [])]
            log.warning("search page outcome issues: %s", ", ".join(codes) or "none")


def entries(bundle: Resource) -> list[Resource]:
    """The entries of a Bundle (history, batch-response), as a list.

    Args:
        bundle: A Bundle.

    Returns:
        Its entries.
    """
    return list(bundle.get("entry", []))
