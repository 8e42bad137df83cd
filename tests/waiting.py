"""Waiting for something another process does (workers, servers), bounded in time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 60.0,
             interval: float = 0.1) -> object:  # fmt: skip
    """Poll until `predicate` returns something truthy and return it; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")
