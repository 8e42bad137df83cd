"""A small process supervisor for `holovitals-sync up`.

Starts each child in its own process group (Reflex and `rq worker-pool` start children of
their own), restarts a child that dies a few times, reports every death, and on Ctrl-C or
SIGTERM stops everything it started, in order: first what produces work (the web app, with
the webhook receiver and the scheduler's triggers), then the workers (each given
`stop_grace` to bring its running job to a checkpoint), then the rest; the services the
children depend on (the embedded Redis) go last, after `run` returns. Services are watched
too, and restarted before any child is checked.

`up` is made a child subreaper: a process orphaned by its parent's death (an RQ work horse,
which runs in a process group of its own, or a node process of Reflex) is re-parented to
`up` rather than to init, so stopping finds and ends it instead of leaving it running
against a Redis that is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger("holovitals_sync.up")

RESTART_LIMIT = 3  # restarts allowed within RESTART_WINDOW before `up` gives up
RESTART_WINDOW = 120.0
STOP_GRACE = 15.0


PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

# Stop phases: what produces work first, then the workers, then everything else.
PRODUCER, WORKER, OTHER = 0, 1, 2


def become_subreaper() -> None:
    """Orphaned descendants become `up`'s children, so `stop` can find and end them."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (from /proc; empty where there is none)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdecimal():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name may hold spaces and parentheses: read after the last ')'.
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(pid: int, parents: dict[int, int] | None = None) -> list[int]:
    """Every process below `pid`, whatever process group or session it moved to."""
    parents = _parents() if parents is None else parents
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def new_group_dying_with_parent() -> None:
    """In the child before exec: own process group, and SIGTERM if `up` itself dies.

    Without the death signal a SIGKILLed `up` would leave workers and dev servers running,
    still writing to the data directory and to `.web`.
    """
    os.setsid()
    # Not Linux: no death signal, but the group is still ours to stop.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def lower_session_priority(nice: int) -> None:
    """Give the calling process's new session (Linux: its autogroup) the CPU weight of `nice`.

    Linux schedules each session as one group (`sched_autogroup_enabled`, on by default) and
    shares the CPU between groups first: a process's own nice weighs only against processes
    of its session. `setsid` above gives each child a session of its own, so niced workers
    still took as much CPU as the web app. Only the session's weight puts them below it. A
    kernel without autogroups has no file to write: the workers' own nice then works alone.
    """
    if nice <= 0:
        return
    with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as group:
        group.write(str(nice))


class Service(Protocol):
    """Something the children need, started before them and kept up while they run."""

    name: str

    def exit_code(self) -> int | None:
        """None while it runs, else how it ended."""
        ...

    def start(self) -> object:
        """Start it again (on the same address); raise when it cannot."""
        ...


def _within_budget(restarts: deque[float], now: float) -> bool:
    while restarts and now - restarts[0] > RESTART_WINDOW:
        restarts.popleft()
    return len(restarts) < RESTART_LIMIT


@dataclass
class Child:
    """One supervised command."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: deque[float] = field(default_factory=deque)
    # A task that runs once (the demo's story): its end is reported, never restarted, and
    # never stops `up`.
    oneshot: bool = False
    ended: bool = False
    stop_phase: int = OTHER
    stop_grace: float = STOP_GRACE  # from SIGTERM to SIGKILL of all that is left of it
    nice: int = 0  # the CPU weight of the child's session (see `lower_session_priority`)

    def start(self) -> None:
        log.info("starting %s: %s", self.name, " ".join(self.argv))
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, preexec_fn=self._before_exec
        )

    def _before_exec(self) -> None:
        new_group_dying_with_parent()
        lower_session_priority(self.nice)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def may_restart(self, now: float) -> bool:
        return _within_budget(self.restarts, now)

    def kill_all(self) -> None:
        """SIGKILL the child's group and every process below it (work horses included)."""
        if self.process is None:
            return
        below = descendants(self.process.pid) if self.process.poll() is None else []
        self.signal_group(signal.SIGKILL)
        _kill(below)


class Supervisor:
    """Runs children until a stop signal, or until one keeps dying."""

    def __init__(self, children: list[Child], services: list[Service] | None = None) -> None:
        self.children = children
        self.services = services or []
        self._service_restarts: dict[str, deque[float]] = {s.name: deque() for s in self.services}
        self._stopping = False

    def _on_signal(self, signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self._stopping = True

    def run(self) -> int:
        """Start everything and watch it; returns the exit code for `up`."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        become_subreaper()
        for child in self.children:
            child.start()
        code = 0
        try:
            while not self._stopping:
                time.sleep(0.5)
                code = self._check_services() or self._check_children()
                if code:
                    break
        finally:
            self.stop()
        return code

    def _check_services(self) -> int:
        """Restart a dead service in place; its clients (workers, Reflex) reconnect to it."""
        now = time.monotonic()
        for service in self.services:
            status = service.exit_code()
            if status is None:
                continue
            restarts = self._service_restarts[service.name]
            if not _within_budget(restarts, now):
                log.error("%s exited with code %s again; giving up", service.name, status)
                return 1
            restarts.append(now)
            log.error("%s exited with code %s; restarting it", service.name, status)
            try:
                service.start()
            except Exception as exc:  # tried again on the next tick, within the budget
                log.error("%s could not be restarted: %s", service.name, exc)
        return 0

    def _check_children(self) -> int:
        now = time.monotonic()
        for child in self.children:
            status = child.exited()
            if status is None or child.ended:
                continue
            if child.oneshot:
                child.ended = True
                report = log.info if status == 0 else log.error
                report("%s finished%s", child.name, "" if status == 0 else f" with code {status}")
                continue
            if not child.may_restart(now):
                log.error("%s exited with code %s again; giving up", child.name, status)
                return 1
            child.restarts.append(now)
            log.error("%s exited with code %s; restarting it", child.name, status)
            child.signal_group(signal.SIGKILL)  # whatever it left behind
            child.start()
        return 0

    def stop(self) -> None:
        """Stop the children phase by phase (producers, workers, the rest): SIGTERM, wait
        the phase's grace, then SIGKILL whatever is left, descendants included.

        Only a group leader gets SIGTERM: `rq worker-pool` and `reflex run` stop their own
        children in order, and a second signal straight to an RQ worker means cold shutdown.
        """
        for phase in sorted({child.stop_phase for child in self.children}):
            self._stop_phase([c for c in self.children if c.stop_phase == phase])
        self._end_orphans()

    def _stop_phase(self, children: list[Child]) -> None:
        for child in children:
            if child.process is not None and child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + max((c.stop_grace for c in children), default=0.0)
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
            child.kill_all()

    def _end_orphans(self) -> None:
        """Processes re-parented to `up` (their parent died first) are ended and reaped."""
        ours = {c.process.pid for c in self.children if c.process is not None}
        ours |= {p.pid for s in self.services if (p := getattr(s, "process", None)) is not None}
        parents = _parents()
        orphans = [
            pid for pid, parent in parents.items() if parent == os.getpid() and pid not in ours
        ]
        for orphan in orphans:
            below = descendants(orphan, parents)
            _kill([orphan, *below])
            with contextlib.suppress(ChildProcessError):
                os.waitpid(orphan, 0)
        if orphans:
            log.warning("ended %d process(es) left behind by stopped children", len(orphans))
