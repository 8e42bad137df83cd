"""The supervisor behind `up` keeps the embedded Redis running: a killed redis-server is
started again on the same socket with its data, a few times, then `up` gives up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import redis

from holovitals_sync.embedded_redis import REFLEX_KEYSPACE_EVENTS
from tests.waiting import wait_for

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from holovitals_sync.embedded_redis import REFLEX_KEYSPACE_EVENTS, EmbeddedRedis
    from holovitals_sync.supervisor import Child, Supervisor
    data = Path(sys.argv[1])
    logging.basicConfig(level=logging.INFO, filename=data / "up.log")
    server = EmbeddedRedis(data, notify_keyspace_events=REFLEX_KEYSPACE_EVENTS)  # as --prod
    server.start()
    idle = Child("idle", [sys.executable, "-c", "import time; time.sleep(600)"], {}, data)
    try:
        sys.exit(Supervisor([idle], [server]).run())
    finally:
        server.stop()
    """
)


def _redis_pid(parent: int) -> int | None:
    for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError):
            if b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return int(pid)
    return None


def _restarted(parent: int, old: int, client: redis.Redis) -> bool:
    pid = _redis_pid(parent)
    if pid in (None, old):
        return False
    with contextlib.suppress(redis.RedisError):
        return bool(client.ping())
    return False


def test_killed_redis_is_restarted_on_its_socket_then_given_up_on(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)],
                            start_new_session=True)  # fmt: skip
    client = redis.Redis(unix_socket_path=str(tmp_path / "redis.sock"), socket_timeout=2)
    try:
        log = tmp_path / "up.log"
        wait_for(lambda: log.exists() and "starting idle" in log.read_text(), 20)  # supervising
        client.rpush("rq:queue:sync.default", "job-1")
        # Three deaths within the window are each reported and repaired, data kept.
        for death in range(1, 4):
            old = _redis_pid(proc.pid)
            assert old is not None
            os.kill(old, signal.SIGKILL)
            wait_for(lambda old=old: _restarted(proc.pid, old, client), 20)
            # ... and `up` has seen it answer (killing it sooner is another test).
            wait_for(lambda n=death + 1: log.read_text().count("Redis listening") == n, 20)
            restarted = "embedded-redis exited with code -9; restarting it"
            assert log.read_text().count(restarted) == death
            assert client.lrange("rq:queue:sync.default", 0, -1) == [b"job-1"]
            # Reflex's state manager set these once, on the server that died.
            events = client.config_get("notify-keyspace-events")["notify-keyspace-events"]
            assert set(events) == set(REFLEX_KEYSPACE_EVENTS)
        # The fourth: `up` stops everything and exits 1 rather than loop.
        os.kill(_redis_pid(proc.pid), signal.SIGKILL)  # type: ignore[arg-type]
        assert proc.wait(30) == 1
        assert "embedded-redis exited with code -9 again; giving up" in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the idle child leads its own group
