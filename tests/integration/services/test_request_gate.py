"""The connection's request gate on real Redis: never more slots than the limit, a long
request keeps its slot, a killed holder's slots come back within a lease."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest
import redis

from holovitals_sync.services.platform import request_gate as gate
from holovitals_sync.services.platform.request_gate import RedisGate
from tests.conftest import REDIS_TEST_URL


@pytest.fixture
def short_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "LEASE", 1.0)
    monkeypatch.setattr(gate, "RENEW_EVERY", 0.2)
    monkeypatch.setattr(gate, "_renewer", gate._Renewer())  # its own thread, at this pace


def test_never_more_than_the_limit_at_once(redis_client: redis.Redis) -> None:
    limit, busy, most = 2, [0], [0]
    lock = threading.Lock()
    shared = RedisGate(redis_client, 901, limit)

    def request() -> None:
        with shared.slot():
            with lock:
                busy[0] += 1
                most[0] = max(most[0], busy[0])
            time.sleep(0.1)
            with lock:
                busy[0] -= 1

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert most[0] == limit
    assert shared.in_flight() == 0


def test_a_long_request_keeps_its_slot(redis_client: redis.Redis, short_leases: None) -> None:
    shared = RedisGate(redis_client, 902, 1)
    taken = threading.Event()
    entered: list[float] = []

    def long_request() -> None:
        with shared.slot():
            taken.set()
            time.sleep(2.5)  # well past its one-second lease: renewed meanwhile

    holder = threading.Thread(target=long_request)
    holder.start()
    taken.wait(5)
    began = time.monotonic()
    with shared.slot():
        entered.append(time.monotonic() - began)
    holder.join()
    assert entered[0] >= 2.0  # waited for the holder, not for its first lease


def test_a_killed_holders_slot_comes_back(redis_client: redis.Redis) -> None:
    code = textwrap.dedent(f"""
        import redis, time
        from holovitals_sync.services.platform import request_gate as gate
        gate.LEASE = 1.0
        client = redis.Redis.from_url({REDIS_TEST_URL!r})
        with gate.RedisGate(client, 903, 1).slot():
            print("held", flush=True)
            time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        holder.kill()
        holder.wait(10)
        began = time.monotonic()
        with RedisGate(redis_client, 903, 1).slot():
            waited = time.monotonic() - began
        assert waited < 10  # the lease ran out; no one held it for the 300 s of a request
    finally:
        if holder.poll() is None:
            holder.kill()
