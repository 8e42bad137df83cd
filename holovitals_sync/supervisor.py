"""A small process supervisor for `holovitals-sync up`.

Starts each child in its own process group (Reflex and `rq worker-pool` start children of
their own), restarts a child that dies a few times, reports every death, and on Ctrl-C or
SIGTERM stops every group it started. Services the children depend on (the embedded Redis)
are watched too, and restarted before any child is checked.
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


def new_group_dying_with_parent() -> None:
    """In the child before exec: own process group, and SIGTERM if `up` itself dies.

    Without the death signal a SIGKILLed `up` would leave workers and dev servers running,
    still writing to the data directory and to `.web`.
    """
    os.setsid()
    # Not Linux: no death signal, but the group is still ours to stop.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


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

    def start(self) -> None:
        log.info("starting %s: %s", self.name, " ".join(self.argv))
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, preexec_fn=new_group_dying_with_parent
        )

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def may_restart(self, now: float) -> bool:
        return _within_budget(self.restarts, now)


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
        """SIGTERM each child, then SIGKILL whatever is left of its group after a grace.

        Only the group leader gets SIGTERM: `rq worker-pool` and `reflex run` stop their own
        children in order, and a second signal straight to an RQ worker means cold shutdown.
        """
        for child in reversed(self.children):
            if child.process is not None and child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
            child.signal_group(signal.SIGKILL)
