"""What `up` starts, as plain data: the environment and the command of each child.

Kept apart from the supervisor so the README's production commands and `up` stay the same
commands, and so tests can check them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .config import QUEUE_FAMILIES, Settings
from .migrations import PROJECT_ROOT

TOOLS_BIN = PROJECT_ROOT / ".tools" / "node_modules" / ".bin"
REFLEX_LOCK_DIR = PROJECT_ROOT / "reflex.lock"
# What the Reflex backend imports: an edit here restarts the dev backend, nothing else does.
APP_CODE = (PROJECT_ROOT / "holovitals_sync", PROJECT_ROOT / "rxconfig.py")
DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org"

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


def _hidden(path: Path) -> bool:
    return path.name.startswith((".", "__"))


def watched_paths(roots: tuple[Path, ...], written: list[Path]) -> list[Path]:
    """`roots` without the folders in `written` (or anything inside them).

    A root that holds a written folder is replaced by its children, recursively, so the
    data directory is left out wherever it is, even inside the package.
    """
    written = [path.resolve() for path in written]
    kept: list[Path] = []
    for root in roots:
        path = root.resolve()
        if any(path == w or w in path.parents for w in written):
            continue
        if path.is_dir() and any(path in w.parents for w in written):
            children = tuple(sorted(c for c in path.iterdir() if not _hidden(c)))
            kept += watched_paths(children, written)
        else:
            kept.append(path)
    return kept


def hot_reload_paths(settings: Settings) -> str:
    """REFLEX_HOT_RELOAD_OVERRIDE_PATHS for the dev server: the app's code only.

    Reflex watches the whole checkout by default, and the product writes there all the
    time (the private Redis's append-only file under `./data`, SQLite's journal, logs): each
    write restarted the backend, which never stayed up long enough to answer.
    """
    paths = watched_paths(APP_CODE, [settings.data_dir])
    if not paths:  # the code lies inside the data directory: watch an empty folder instead
        paths = [settings.data_dir / "no-hot-reload"]
        paths[0].mkdir(parents=True, exist_ok=True)
    return ":".join(str(path) for path in paths)


def npm_registry() -> str:
    """The npm registry this machine is configured for (a hospital's mirror, say).

    Given to Reflex so it does not time its own list of public registries at start-up,
    which fails behind a firewall and prints errors about a registry nobody asked for.
    """
    npm = shutil.which("npm")
    if npm is None:
        return DEFAULT_NPM_REGISTRY
    try:
        result = subprocess.run([npm, "config", "get", "registry"], capture_output=True,
                                text=True, timeout=30, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_NPM_REGISTRY
    registry = result.stdout.strip()
    return (
        registry
        if result.returncode == 0 and registry.startswith("http")
        else (DEFAULT_NPM_REGISTRY)
    )


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
    env.setdefault("REFLEX_HOT_RELOAD_OVERRIDE_PATHS", hot_reload_paths(settings))
    env.setdefault("NPM_CONFIG_REGISTRY", npm_registry())
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


def mllp_command() -> list[str]:
    """The MLLP listener for HL7 v2 ADT feeds (host, port and limits from the settings)."""
    return [bin_path("holovitals-sync"), "mllp"]


def demo_command() -> list[str]:
    """The demo's story (syncs, a conflict, a failure, an alert), run once by `up --demo`."""
    return [bin_path("holovitals-sync"), "demo"]


def demo_env(env: dict[str, str]) -> dict[str, str]:
    """`up --demo`: webhooks may also reach `localhost`, where the sandbox's inbox (the
    demo's subscriber) listens. Never in production: the SSRF guard refuses loopback."""
    allowed = [h for h in env.get("HOLOVITALS_WEBHOOK_ALLOW_HOSTS", "").split(",") if h.strip()]
    return {**env, "HOLOVITALS_WEBHOOK_ALLOW_HOSTS": ",".join([*allowed, "localhost"])}


def frontend_initialised(root: Path = PROJECT_ROOT) -> bool:
    """Whether Reflex's `.web` folder exists for the installed Reflex version."""
    try:
        built = json.loads((root / ".web" / "reflex.json").read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        return False
    return built == metadata.version("reflex")


def reflex_init_command() -> list[str]:
    """Prepares `.web` the way `reflex run` would on its first start, but run by `up`.

    `reflex run` does it itself when `.web` is missing, and then tells the user to
    "Run `uv run reflex run`", which is wrong for this product: `up` runs it quietly first.
    """
    return [bin_path("reflex"), "init", "--no-agents"]


def sandbox_command(settings: Settings) -> list[str]:
    """The sandbox EHR with demo data, for `up --demo`."""
    return [
        bin_path("holovitals-sync"),
        "sandbox",
        "--port", str(settings.sandbox_port),
        "--patients", "50",
        "--seed", "7",
        # Its clinic days' ADT feed goes to our own listener, as a hospital's would.
        *(["--adt-to", f"127.0.0.1:{settings.mllp_port}"] if settings.mllp_port else []),
    ]  # fmt: skip
