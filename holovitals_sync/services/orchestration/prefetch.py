"""Read the adapter's pages (as batches) in a background thread while the previous batch is
written.

Fetching (HTTP, NDJSON parsing) and storing (database round trips) mostly wait on I/O, so
overlapping them shortens a run; a small bounded queue keeps memory flat.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()
DEPTH = 2


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetched(items: Iterable[T], depth: int = DEPTH) -> Iterator[T]:
    """Yield `items` in order, produced up to `depth` ahead in a daemon thread.

    An exception in the producer is re-raised here; closing this generator early (a
    cancelled run) stops the producer at its next item.
    """
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            buffer.put(_Failure(exc))

    # In a copy of the caller's context: the trace (telemetry) follows the fetches there.
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(produce,), name="sync-prefetch", daemon=True
    )
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
