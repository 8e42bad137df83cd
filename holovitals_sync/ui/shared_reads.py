"""Reads every open tab would repeat, done once per backend process and shared.

Ten dashboard tabs receive the same job event at the same moment, and each would re-read
the same summary cards (a health check, the queue registries, several aggregate queries)
and, on a change notice, the same first page of the same list: ten times the database work
for one answer. Here a read is shared by everything that asks for the same function and
arguments on one event loop, provided it is fresh enough for the asker: `since` is the
moment the asker's figures went stale (the loop time its event arrived), and a read that
started at or after that moment sees whatever that event reported. Such a read is joined
while it runs and reused once it has finished, for at most `KEEP` seconds; an older one is
never served, so sharing never shows a tab something staler than reading alone would.

Every caller gets its own deep copy: Reflex keeps what a state is given, and two tabs must
not hold the same list.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
KEEP = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class _Read:
    started: float
    result: asyncio.Future[Any]


_reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Read]] = (
    weakref.WeakKeyDictionary()
)


async def read(fn: Callable[..., T], *args: Hashable, since: float) -> T:
    """`fn(*args)` in a thread, or the result of such a call started at or after `since`."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    reads = _reads.setdefault(loop, {})
    for key in [k for k, r in reads.items() if now - r.started > KEEP]:
        del reads[key]
    key = (fn, args)
    found = reads.get(key)
    if found is None or found.started < since:
        found = reads[key] = _Read(now, asyncio.ensure_future(asyncio.to_thread(fn, *args)))
        found.result.add_done_callback(lambda done: _forget_failure(reads, key, done))
    # Shielded: a tab closing mid-read must not cancel the read the other tabs wait for.
    result = await asyncio.shield(found.result)
    return copy.deepcopy(result)


def _forget_failure(reads: dict[Hashable, _Read], key: Hashable, done: asyncio.Future[Any]) -> None:
    """A failed read is not served again (and its error counts as retrieved)."""
    if done.cancelled() or done.exception() is not None:
        current = reads.get(key)
        if current is not None and current.result is done:
            del reads[key]
