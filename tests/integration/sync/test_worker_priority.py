"""Workers run below the backend's CPU priority (issue #26, point 1): as shipped, 28 worker
processes on two cores took the webhook receiver down to 0.28x of a bare endpoint while they
worked a backlog."""

from __future__ import annotations

import os
from pathlib import Path

from tests.waiting import wait_for


def _nice(pid: int) -> int:
    # /proc/<pid>/stat: the 19th field is the nice value (after the parenthesised name).
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])


def test_a_worker_runs_niced_and_its_forked_work_horses_inherit_it(sync_db, workers):
    (proc,) = workers.start(1)
    mine = os.nice(0)
    assert wait_for(lambda: _nice(proc.pid) == mine + 10 or None, timeout=30)
