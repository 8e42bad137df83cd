"""Cutting one large type's search into `_lastUpdated` windows that several workers page at once.

Offset paging makes a type's pages come one after another, and each page costs more the
further in it lies: more workers cannot help while the largest type is one search. Every
resource on a FHIR server carries `meta.lastUpdated`, so windows `[lo, hi)` of it that tile
the whole time line match every resource exactly once, and each window is a small search
of its own.

The windows are found by asking the server how many resources a window holds
(`_summary=count`) and halving the fullest window (in time) until each holds about
`target` or cannot shrink below a second. The last window is open-ended and starts at the
server's clock when the plan was made (`start`): a resource changed while the sync runs
moves into it, so the part that pages it runs after every other part (see
`adapters.parts`) and a change mid-sync never hides a resource from the complete run,
whose end tombstones what it did not see.
"""

from __future__ import annotations

import heapq
import logging
from datetime import UTC, datetime, timedelta

from holovitals_sync.fhir.client import FhirClient
from holovitals_sync.fhir.errors import FhirError
from holovitals_sync.fhir.ids import fhir_instant

log = logging.getLogger(__name__)

Window = tuple[str, str]  # [lo, hi) as FHIR instants; "" is open
# Where the time line is cut when nothing bounds it below (no server stores older records).
FLOOR = "2000-01-01T00:00:00Z"
# Count queries a plan may ask of one type: halving from FLOOR down to whole seconds takes
# about 30, then one per extra window.
MAX_PROBES = 96
TAIL_LOOKBACK = timedelta(seconds=60)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _middle(lo: str, hi: str) -> str | None:
    """A whole-second instant strictly between lo and hi, or None when there is none."""
    start, end = _instant(lo or FLOOR), _instant(hi)
    mid = fhir_instant((start + (end - start) / 2).replace(microsecond=0))
    return mid if (lo or FLOOR) < mid < hi and _instant(mid) > start else None


def _tail_start(server_time: str | None) -> str:
    """Where the open tail starts: the earlier of the server's clock and ours, less the
    look-back every incremental sync allows (a clock ahead of the server's, or a write
    stamped before it commits, must not land a mid-sync change in a window already read).
    An earlier start is always safe: the tail only gets larger."""
    now = datetime.now(UTC)
    server = _instant(server_time) if server_time else now
    return fhir_instant((min(server, now) - TAIL_LOOKBACK).replace(microsecond=0))


def params_of(window: Window) -> list[tuple[str, str]]:
    """The `_lastUpdated` parameters that select one window."""
    lo, hi = window
    return ([("_lastUpdated", f"ge{lo}")] if lo else []) + (
        [("_lastUpdated", f"lt{hi}")] if hi else []
    )


class Counter:
    """How many resources of one type a window holds, asked of the server."""

    def __init__(self, client: FhirClient, rtype: str, extra: list[tuple[str, str]]) -> None:
        self.client, self.rtype, self.extra = client, rtype, extra
        self.asked = 0
        self.server_time: str | None = None

    def __call__(self, window: Window) -> int | None:
        self.asked += 1
        params = [*self.extra, *params_of(window), ("_summary", "count")]
        try:
            bundle = next(iter(self.client.pages(self.client.url(self.rtype), params)), None)
        except FhirError as exc:  # no `_summary=count` or no `_lastUpdated`: not cut
            log.info("%s: window count refused (%s); not cut", self.rtype, exc.status)
            return None
        if bundle is None or not isinstance(bundle.get("total"), int):
            return None
        self.server_time = self.server_time or (bundle.get("meta") or {}).get("lastUpdated")
        return int(bundle["total"])


def cut(counter: Counter, total: int, target: int, most: int) -> list[Window] | None:
    """Windows of about `target` of the type's `total` resources (at most `most`), the last
    one open; None when the server cannot count them or the type needs no cutting."""
    if total <= target:
        return None
    start = _tail_start(counter.server_time)
    tail = counter((start, ""))
    if tail is None:
        return None
    before = total - tail
    # A max-heap on the count (negated), ties by time, of the closed windows before `start`.
    heap: list[tuple[int, str, str]] = [(-before, "", start)]
    done: list[tuple[str, str, int]] = []
    while heap and len(heap) + len(done) < most and counter.asked < MAX_PROBES:
        neg, lo, hi = heapq.heappop(heap)
        if -neg <= target:
            done.append((lo, hi, -neg))
            break
        mid = _middle(lo, hi)
        low = counter((lo, mid)) if mid else None
        if mid is None or low is None:
            done.append((lo, hi, -neg))
            continue
        for window in ((lo, mid, low), (mid, hi, -neg - low)):
            if window[2] > 0:  # an empty window needs no part
                heapq.heappush(heap, (-window[2], window[0], window[1]))
    done += [(lo, hi, -neg) for neg, lo, hi in heap]
    windows = _tile([(lo, hi) for lo, hi, _ in done], start)
    return windows if len(windows) > 1 else None


def _tile(closed: list[Window], start: str) -> list[Window]:
    """The cuts between the windows kept, chained from the open start to `start`, then the
    open tail: together the whole time line (an empty window dropped joins its neighbour)."""
    cuts = sorted({hi for _, hi in closed if hi and hi < start})
    bounds = ["", *cuts, start]
    return [*zip(bounds, bounds[1:], strict=False), (start, "")]
