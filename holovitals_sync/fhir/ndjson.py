"""Incremental NDJSON parsing in constant memory.

Bulk Data files can be gigabytes: bytes are consumed chunk by chunk and only the current,
unfinished line is buffered. Lines before a broken one are yielded; the broken one raises
`TruncatedFile` with its line number, so callers know the file was incomplete.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import orjson

from holovitals_sync.fhir.errors import MalformedResponse, TruncatedFile


def _decode(line: bytes, *, url: str, number: int, last: bool) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        if last:
            raise TruncatedFile(
                f"{url} ends with an incomplete line {number}", url=url, line_number=number
            ) from None
        raise MalformedResponse(f"{url}: line {number} is not valid JSON", url=url) from None
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise MalformedResponse(f"{url}: line {number} is not a FHIR resource", url=url)
    return value


def iter_ndjson(chunks: Iterable[bytes], *, url: str) -> Iterator[dict[str, Any]]:
    """Yield one resource per NDJSON line from a stream of byte chunks.

    Args:
        chunks: The body, in chunks of any size (e.g. `response.iter_bytes()`).
        url: The file URL, named in errors.

    Yields:
        Resources in file order; blank lines are skipped.

    Raises:
        TruncatedFile: The last line is cut off, or the stream broke off mid-file.
        MalformedResponse: A complete line is not a JSON resource.
    """
    buffer = bytearray()
    number = 0
    try:
        for chunk in chunks:
            buffer += chunk
            start = 0
            while (end := buffer.find(b"\n", start)) != -1:
                number += 1
                line = bytes(buffer[start:end]).strip()
                start = end + 1
                if line:
                    yield _decode(line, url=url, number=number, last=False)
            # Drop consumed lines so the buffer only ever holds the unfinished one.
            del buffer[:start]
    except httpx.TransportError as exc:
        raise TruncatedFile(
            f"download of {url} broke off during line {number + 1} ({type(exc).__name__})",
            url=url,
            line_number=number + 1,
        ) from exc
    tail = bytes(buffer).strip()
    if tail:
        # Many servers omit the final newline: a tail that parses is a complete line.
        yield _decode(tail, url=url, number=number + 1, last=True)
