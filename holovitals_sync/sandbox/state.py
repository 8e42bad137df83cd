"""The sandbox's whole mutable state, one object per app (tests run several apps at once)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from holovitals_sync.sandbox import data
from holovitals_sync.sandbox.auth import AuthState
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.faults import FaultState
from holovitals_sync.sandbox.store import Record, Store
from holovitals_sync.sandbox.vendors import VendorProfile, profile_for


class Stats:
    """Counters tests assert on: requests by status, faults injected, tokens issued."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.by_status: Counter[int] = Counter()
            self.faults: Counter[str] = Counter()
            self.fhir_calls = 0
            self.requests = 0
            # method, path (no query string), status, time: enough to check pacing
            self.recent: deque[dict[str, Any]] = deque(maxlen=2000)
            # FHIR calls being answered now, and the most at once since the last reset:
            # what a hospital would see of a client's concurrency.
            self.in_flight = 0
            self.max_in_flight = 0

    def record(self, method: str, path: str, status: int, fhir: bool, query: str = "") -> None:
        with self._lock:
            self.requests += 1
            self.fhir_calls += fhir
            self.by_status[status] += 1
            self.recent.append(
                {"t": time.time(), "method": method, "path": path, "query": query, "status": status}
            )

    def begin(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def snapshot(self, tokens_issued: int) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "fhir_calls": self.fhir_calls,
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "faults": dict(self.faults),
                "tokens_issued": tokens_issued,
                "max_in_flight": self.max_in_flight,
                "recent": list(self.recent),
            }


@dataclass
class Snapshot:
    """A search's matching records, frozen at its first page so paging is stable."""

    rtype: str
    records: list[Record]
    created: float


class Snapshots:
    def __init__(self, ttl: float, limit: int) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Snapshot] = OrderedDict()
        self.ttl, self.limit = ttl, limit

    def add(self, snap: Snapshot) -> str:
        key = secrets.token_urlsafe(12)
        with self._lock:
            self._items[key] = snap
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> Snapshot | None:
        with self._lock:
            snap = self._items.get(key)
            if snap and time.time() - snap.created > self.ttl:
                del self._items[key]
                return None
            return snap


INBOX_KEEP = 200


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.profile: VendorProfile = profile_for(config.vendor)
        self.store = Store()
        self.store.load(data.generate(config.seed, config.patients))
        self.store.load([data.all_patients_group(config.patients)])
        self.faults = FaultState(config.faults)
        self.auth = AuthState(list(config.clients), config.token_lifetime_seconds)
        self.stats = Stats()
        self.snapshots = Snapshots(config.search_snapshot_ttl_seconds, config.max_search_snapshots)
        self.exports: dict[str, Any] = {}  # job id -> export.ExportJob
        self.clinic_days = 0
        self.notify_events: dict[str, int] = {}  # receiver URL -> events sent so far
        # Webhook deliveries received at /_sandbox/inbox (the demo's subscriber): the
        # newest INBOX_KEEP, headers and event type only, and how many arrived in all.
        self.inbox: deque[dict[str, Any]] = deque(maxlen=INBOX_KEEP)
        self.inbox_total = 0

    @property
    def max_page_size(self) -> int:
        return self.profile.max_page_size or self.config.max_page_size

    @property
    def default_page_size(self) -> int:
        return self.profile.default_page_size or self.config.default_page_size
