"""The Bulk Data completion manifest as typed, immutable objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from holovitals_sync.fhir.bundle import parse_json
from holovitals_sync.fhir.errors import MalformedResponse


@dataclass(frozen=True, slots=True)
class OutputFile:
    """One file of the manifest: resource type, URL and (optional) resource count."""

    type: str
    url: str
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """A completed export.

    Attributes:
        transaction_time: Server time the export reflects; the next `_since`.
        request: The kick-off URL the server echoes.
        requires_access_token: Whether file downloads need the bearer token.
        output: Output files.
        error: Error files (NDJSON of OperationOutcome).
        raw: The manifest as received (it holds no PHI, only URLs and counts).
        deleted: Files of Bundles whose DELETE entries name what was deleted since `_since`.
    """

    transaction_time: str
    request: str
    requires_access_token: bool
    output: tuple[OutputFile, ...]
    error: tuple[OutputFile, ...]
    raw: dict[str, Any]
    deleted: tuple[OutputFile, ...] = ()

    @property
    def total_count(self) -> int | None:
        """Sum of the output counts, when the server gave every one."""
        counts = [f.count for f in self.output]
        return None if any(c is None for c in counts) else sum(counts)  # type: ignore[misc]


def _files(raw: Any, *, url: str, key: str) -> tuple[OutputFile, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MalformedResponse(f"manifest from {url}: {key} is not a list", url=url)
    files = []
    for item in raw:
        if not isinstance(item, dict) or not item.get("url") or not item.get("type"):
            raise MalformedResponse(f"manifest from {url}: malformed {key} item", url=url)
        count = item.get("count")
        files.append(
            OutputFile(
                type=str(item["type"]),
                url=str(item["url"]),
                count=int(count) if isinstance(count, int) else None,
            )
        )
    return tuple(files)


def parse_manifest(content: bytes, *, url: str) -> Manifest:
    """Parse and check a completion manifest.

    Args:
        content: The 200 body of the status URL.
        url: The status URL (named in errors).

    Returns:
        The manifest.

    Raises:
        MalformedResponse: Not JSON or a required field is missing.
    """
    data = parse_json(content, url=url)
    if not isinstance(data, dict) or "transactionTime" not in data or "output" not in data:
        raise MalformedResponse(f"response from {url} is not a bulk export manifest", url=url)
    return Manifest(
        transaction_time=str(data["transactionTime"]),
        request=str(data.get("request", "")),
        requires_access_token=bool(data.get("requiresAccessToken", False)),
        output=_files(data["output"], url=url, key="output"),
        error=_files(data.get("error"), url=url, key="error"),
        raw=data,
        deleted=_files(data.get("deleted"), url=url, key="deleted"),
    )
