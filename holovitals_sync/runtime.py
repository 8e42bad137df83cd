"""What `up` starts, as plain data: the environment and the command of each child.

Kept apart from the supervisor so the README's production commands and `up` stay the same
commands, and so tests can check them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path

from .config import QUEUE_FAMILIES, Settings
from .migrations import PROJECT_ROOT

TOOLS_BIN = PROJECT_ROOT / ".tools" / "node_modules" / ".bin"
REFLEX_LOCK_DIR = PROJECT_ROOT / "reflex.lock"

log = logging.getLogger(__name__)


def heal_reflex_lock(lock_dir: Path = REFLEX_LOCK_DIR) -> bool:
    """Drop a `reflex.lock/` that an interrupted Reflex left half-written.

    Reflex rewrites these files in place on every start; a process killed mid-write leaves
    an empty or truncated file, and Reflex then refuses to start until the folder is
    deleted. Deleting it makes Reflex pin the frontend packages afresh. Returns True when
    the folder was dropped.
    """
    package = lock_dir / "package.json"
    lockfile = lock_dir / "bun.lock"
    if not lock_dir.exists():
        return False
    try:
        json.loads(package.read_text())
        healthy = lockfile.stat().st_size > 0
    except (OSError, ValueError):
        healthy = False
    if not healthy:
        log.warning("%s was left half-written by an interrupted Reflex; regenerating it", lock_dir)
        shutil.rmtree(lock_dir)
    return not healthy


def child_env(settings: Settings, redis_url: str) -> dict[str, str]:
    """The environment every child gets: resolved settings and Reflex's offline toolchain."""
    env = dict(os.environ)
    env["HOLOVITALS_DATA_DIR"] = str(settings.data_dir)
    env["HOLOVITALS_REDIS_URL"] = redis_url
    env["HOLOVITALS_DATABASE_URL"] = settings.effective_database_url
    # Reflex would download bun from the internet; use the one setup.sh installed from npm.
    env["PATH"] = os.pathsep.join([str(TOOLS_BIN), str(Path(sys.executable).parent), env["PATH"]])
    env["REFLEX_USE_SYSTEM_BUN"] = "1"
    env["REFLEX_TELEMETRY_ENABLED"] = "false"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def bin_path(name: str) -> str:
    """A console script of this virtualenv (rq, reflex, holovitals-sync)."""
    return str(Path(sys.executable).parent / name)


def worker_command(settings: Settings, family: str) -> list[str]:
    """`rq worker-pool` for one queue family, highest-priority queue first."""
    return [
        bin_path("rq"),
        "worker-pool",
        "-c", "workers.settings",
        "-n", str(settings.workers_for(family)),
        "-w", "workers.worker.HoloVitalsWorker",
        "-l", settings.log_level,
        *settings.queue_names(family),
    ]  # fmt: skip


def worker_families(settings: Settings) -> list[str]:
    return [family for family in QUEUE_FAMILIES if settings.workers_for(family) > 0]


def reflex_command(settings: Settings, *, prod: bool = False) -> list[str]:
    """The Reflex app.

    Development: UI on the frontend port, API and websocket on the backend port.
    Production: Reflex serves the built UI, the API and the websocket on one port.
    """
    backend_port = settings.frontend_port if prod else settings.backend_port
    argv = [
        bin_path("reflex"),
        "run",
        "--frontend-port", str(settings.frontend_port),
        "--backend-port", str(backend_port),
    ]  # fmt: skip
    if prod:
        argv += ["--env", "prod"]
    return argv


def sandbox_command(settings: Settings) -> list[str]:
    """The sandbox EHR with demo data, for `up --demo`."""
    return [
        bin_path("holovitals-sync"),
        "sandbox",
        "--port", str(settings.sandbox_port),
        "--patients", "50",
        "--seed", "7",
    ]  # fmt: skip
