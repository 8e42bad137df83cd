"""Cutting a stream of pages into batches of a fixed size, each with the checkpoint it may
commit: the checkpoint of the last page all of whose resources are in this or an earlier
batch. A batch ending mid-page commits the previous checkpoint; replaying its part of the
page after a crash is harmless because the upsert is idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...adapters import FetchedPage
from .pipeline import ProcessedBatch
from .upsert import Prepared


@dataclass(slots=True)
class Batch:
    """Resources to store, and what to commit with them (None: keep the last checkpoint)."""

    resources: list[dict[str, Any]]
    checkpoint: dict[str, Any] | None
    cursor: dict[str, str] = field(default_factory=dict)
    total_estimate: int | None = None
    # (type, id) the EHR says it deleted, from the pages this batch commits.
    deleted: list[tuple[str, str]] = field(default_factory=list)
    # Screened, transformed and validated, when done ahead (in the prefetch thread).
    processed: ProcessedBatch | None = None
    # `upsert.prepare` (the row: content hash, serialised body, ..) of each resource to
    # store by `id()`, when done ahead: valid while `processed` holds those very objects.
    prepared: dict[int, Prepared] | None = None
    # The page size the server turned out to honour, learned by these pages' fetch.
    page_size_learned: int | None = None


class Batcher:
    """Accumulates pages; yields batches of `size` resources (the last may be smaller)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._buffer: list[dict[str, Any]] = []
        self._flushed = 0
        # (absolute index after the page's last resource, the page)
        self._marks: list[tuple[int, FetchedPage]] = []

    def add(self, page: FetchedPage) -> Iterator[Batch]:
        """Take one page; yield every full batch it completes."""
        self._buffer.extend(page.resources)
        end = self._flushed + len(self._buffer)
        self._marks.append((end, page))
        while len(self._buffer) >= self.size:
            yield self._take(self.size)

    def finish(self) -> Iterator[Batch]:
        """The remainder, if any resource or checkpoint is still pending."""
        if self._buffer or self._marks:
            yield self._take(len(self._buffer))

    def _take(self, count: int) -> Batch:
        resources = self._buffer[:count]
        del self._buffer[:count]
        self._flushed += count
        batch = Batch(resources, None)
        while self._marks and self._marks[0][0] <= self._flushed:
            _, page = self._marks.pop(0)
            batch.checkpoint, batch.total_estimate = page.checkpoint, page.total_estimate
            batch.cursor.update(page.cursor)
            batch.deleted += page.deleted
            batch.page_size_learned = page.page_size_learned or batch.page_size_learned
        return batch


def batches(pages: Iterable[FetchedPage], size: int) -> Iterator[Batch]:
    """Every batch of a page stream, in order."""
    batcher = Batcher(size)
    for page in pages:
        yield from batcher.add(page)
    yield from batcher.finish()
