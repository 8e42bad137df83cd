"""The supervisor behind `up`: reports and restarts a dead child, stops every group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from holovitals_sync.supervisor import Child, Supervisor
    logging.basicConfig(level=logging.INFO)
    out = Path(sys.argv[1])
    # Each child writes its pid, then starts a grandchild, then sleeps.
    code = (
        "import os, subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
        "open(sys.argv[1], 'a').write(f'{os.getpid()}\\\\n'); time.sleep(600)"
    )
    children = [
        Child(name, [sys.executable, "-c", code, str(out / name)], {}, out)
        for name in ("alpha", "beta")
    ]
    sys.exit(Supervisor(children).run())
    """
)


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail("condition not reached in time")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return state != "Z"


def test_dead_child_is_reported_and_restarted_then_all_stop(tmp_path):
    env = {**os.environ, "PATH": os.environ["PATH"]}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: _pids(tmp_path / "alpha") and _pids(tmp_path / "beta"))
        first = _pids(tmp_path / "alpha")[0]
        os.kill(first, signal.SIGKILL)
        _wait_for(lambda: len(_pids(tmp_path / "alpha")) == 2)
        second = _pids(tmp_path / "alpha")[1]
        assert second != first and _alive(second)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        stderr = proc.stderr.read()
        assert "alpha exited with code -9; restarting it" in stderr
        assert "received SIGTERM, stopping" in stderr
        for pid in [second, _pids(tmp_path / "beta")[0]]:
            _wait_for(lambda pid=pid: not _alive(pid), 10)
        # The grandchildren of each group are gone too.
        leftovers = subprocess.run(
            ["pgrep", "-f", "time.sleep\\(600\\)"], capture_output=True, text=True
        ).stdout.split()
        assert not [pid for pid in leftovers if _alive(int(pid))]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_children_die_with_a_killed_supervisor(tmp_path):
    """SIGKILL on `up` itself must not leave its children running."""
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path)],
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        _wait_for(lambda: _pids(tmp_path / "alpha") and _pids(tmp_path / "beta"))
        children = _pids(tmp_path / "alpha") + _pids(tmp_path / "beta")
        proc.kill()
        proc.wait(10)
        for pid in children:
            _wait_for(lambda pid=pid: not _alive(pid), 10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        # The children's own children (each child leads its group) are this test's to clean.
        for pid in _pids(tmp_path / "alpha") + _pids(tmp_path / "beta"):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
