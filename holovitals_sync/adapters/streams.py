"""Several tasks of one fetch paged at once: parallel streams within one sync job.

A server whose cost is per page (many re-run the query for each page) answers one stream
slowly whatever our side does; several searches at once, one per resource type, use the
time it spends on each. `Fetcher.run` hands a plan of more than one task here when the
connection allows more than one stream (`ConnectionSpec.streams`, at most its concurrency
limit; every request also passes the connection's request gate, so the EHR never sees more
than that many of ours at once).

Each task runs in its own thread and hands its pages to the caller's thread through one
small bounded queue, so memory stays flat and the caller stores pages in the order they
arrive. The checkpoint of a page holds every stream's position as of the pages handed out
so far: `{"streams": {task index: state after its last page handed out, or "done"}}` (plus
`recent` ids per stream where the vendor repeats ids across pages). Batches are committed
in order, so committing a page's checkpoint commits exactly the pages handed out before
it; a resumed run restarts each unfinished stream from its own position: no loss, and
nothing fetched twice beyond the uncommitted tail.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from holovitals_sync.adapters import volume
from holovitals_sync.adapters.plan import Task
from holovitals_sync.adapters.types import FetchedPage

if TYPE_CHECKING:
    from holovitals_sync.adapters.fetch import Fetcher, Step

DONE = "done"
_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Streams:
    """The threads of one parallel fetch and the queue they hand pages through."""

    def __init__(self, fetcher: Fetcher, tasks: list[Task], width: int) -> None:
        self.fetcher, self.tasks, self.width = fetcher, tasks, width
        self.out: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=2 * width)
        self.stop = threading.Event()

    def start(self, k: int, state: dict[str, Any]) -> None:
        # In a copy of the caller's context: the trace (telemetry) follows each stream.
        thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._run, k, state),
            daemon=True,
            name=f"sync-stream-{k}",
        )
        thread.start()

    def _run(self, k: int, state: dict[str, Any]) -> None:
        try:
            for step in self.fetcher._steps(self.tasks[k], state):
                if not self._put((k, step)):
                    return
            self._put((k, _END))
        except BaseException as exc:  # handed to the caller's thread, which re-raises it
            self._put((k, _Failure(exc)))

    def _put(self, item: tuple[int, Any]) -> bool:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False


def run_parallel(
    fetcher: Fetcher, tasks: list[Task], resume: dict[str, Any] | None, width: int
) -> Iterator[FetchedPage]:
    """Every task's pages, up to `width` tasks at once, each page with the checkpoint of
    all streams so far."""
    from holovitals_sync.adapters.fetch import StallWatch

    resume = resume or {}
    positions: dict[str, Any] = dict(resume.get("streams") or {})
    recent: dict[str, list[str]] = dict(resume.get("recent") or {})
    # The longest tasks first (`adapters.volume`): the largest type's pages set the run's end.
    waiting = volume.start_order(
        tasks, [k for k in range(len(tasks)) if positions.get(str(k)) != DONE]
    )
    totals: dict[int, int] = {}
    streams = _Streams(fetcher, tasks, width)
    stall = StallWatch(fetcher.stall_seconds)
    seen: dict[int, set[str]] = {}
    running = 0
    try:
        while waiting or running:
            while waiting and running < width:
                k = waiting.pop(0)
                state = positions.get(str(k))
                streams.start(k, state if isinstance(state, dict) else {})
                seen[k] = set(recent.get(str(k)) or [])
                running += 1
            k, item = streams.out.get()
            if item is _END:
                running -= 1
                continue
            if isinstance(item, _Failure):
                raise item.exc
            page = _page(fetcher, tasks[k], k, item, positions, recent, seen[k], totals)
            stall.page(bool(page.resources or page.deleted) or positions[str(k)] == DONE)
            yield page
    finally:
        streams.stop.set()


def _page(
    fetcher: Fetcher,
    task: Task,
    k: int,
    step: Step,
    positions: dict[str, Any],
    recent: dict[str, list[str]],
    seen: set[str],
    totals: dict[int, int],
) -> FetchedPage:
    from holovitals_sync.adapters.fetch import _key, marks_deletes

    resources, after, cursor, total = step
    positions[str(k)] = after if after is not None else DONE
    if total is not None:
        totals[k] = total
    checkpoint: dict[str, Any] = {"streams": dict(positions)}
    estimate = sum(totals.values()) if totals else None
    if marks_deletes(task, after):  # deletes, not resources
        if recent:
            checkpoint["recent"] = dict(recent)
        return FetchedPage([], checkpoint, cursor, estimate, deleted=[tuple(r) for r in resources])
    kept = fetcher._dedupe(resources, seen)
    if fetcher.profile.dedupe_ids:
        recent[str(k)] = [_key(r) for r in resources]
    if recent:
        checkpoint["recent"] = dict(recent)
    return FetchedPage(kept, checkpoint, cursor, estimate, page_size_learned=fetcher.sizer.learned)
