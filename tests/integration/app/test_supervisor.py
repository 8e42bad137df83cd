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


# Each child notes when SIGTERM came and when it left; the worker first starts a 'horse' in
# a process group of its own that ignores SIGTERM (as RQ's does), and leaves after a second
# without it, so the horse is orphaned.
CHILD = """
import os, signal, sys, time
name, out, linger = sys.argv[1], sys.argv[2], float(sys.argv[3])
def note(what):
    with open(out, "a") as f:
        f.write(f"{name} {what} {time.time()}\\n")
if name == "worker" and os.fork() == 0:
    os.setpgrp()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    name = "horse"
    note(str(os.getpid()))
    time.sleep(600)
    os._exit(0)
def leave(*_):
    note("term")
    time.sleep(linger)
    note("exit")
    sys.exit(0)
signal.signal(signal.SIGTERM, leave)
note("up")
time.sleep(600)
"""

ORDERED = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from holovitals_sync.supervisor import OTHER, PRODUCER, WORKER, Child, Supervisor
    logging.basicConfig(level=logging.INFO)
    out, code = Path(sys.argv[1]), sys.argv[2]
    log = str(out / "log")
    children = [
        Child("worker", [sys.executable, "-c", code, "worker", log, "1"], {}, out,
              stop_phase=WORKER, stop_grace=5),
        Child("ehr", [sys.executable, "-c", code, "ehr", log, "0"], {}, out, stop_phase=OTHER),
        Child("web", [sys.executable, "-c", code, "web", log, "0.5"], {}, out,
              stop_phase=PRODUCER),
    ]
    sys.exit(Supervisor(children).run())
    """
)


def _notes(path: Path) -> dict[tuple[str, str], float]:
    notes = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        name, what, value = line.split()
        notes[(name, what)] = float(value)
    return notes


def test_stop_goes_producers_workers_rest_and_ends_orphaned_horses(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", ORDERED, str(tmp_path), CHILD],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(
            lambda: (
                {("web", "up"), ("worker", "up"), ("ehr", "up")} <= set(_notes(tmp_path / "log"))
            )
        )
        horse = int(next(k[1] for k in _notes(tmp_path / "log") if k[0] == "horse"))
        assert _alive(horse)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        notes = _notes(tmp_path / "log")
        # Producers are gone before a worker is asked to stop; workers before the rest.
        assert notes[("web", "exit")] <= notes[("worker", "term")]
        assert notes[("worker", "exit")] <= notes[("ehr", "term")]
        _wait_for(lambda: not _alive(horse), 5)  # re-parented to `up`, then ended
        assert "ended 1 process(es) left behind" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in [int(k[1]) for k in _notes(tmp_path / "log") if k[0] == "horse"]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
