"""What every benchmark script shares: the commit its figures belong to, and the product
started the README's way for the benchmarks that need all of it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import sqlalchemy as sa

PG_ADMIN = os.environ.get(
    "HOLOVITALS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def commit_sha() -> str:
    """Short SHA of HEAD, or "unknown" outside a repository with commits."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).parent)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def fresh_postgres(prefix: str = "hv_bench") -> tuple[str, Callable[[], None]]:
    """A scratch PostgreSQL database on the machine's server, and the function that drops it
    (connections still open to it included)."""
    from holovitals_sync.db import create_db_engine  # a plain postgresql:// URL -> psycopg 3

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_db_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoProduct:
    """`holovitals-sync up --demo` in a scratch directory on free ports, stopped with SIGTERM.

    `workers` is the pool size per queue family, or None for the product's own sizing (what
    a user gets); `env` adds settings (database, batch size). `prod` runs `up --demo --prod`:
    a production build, served with UI, API and websocket on the frontend port by
    HOLOVITALS_BACKEND_WORKERS processes. Edits elsewhere in the checkout must not
    hot-reload the backend mid-run, so Reflex watches an empty directory instead.
    """

    def __init__(
        self, root: Path, workers: dict[str, int] | None, env: dict[str, str], *, prod: bool = False
    ) -> None:
        self.front, self.back, self.ehr = free_port(), free_port(), free_port()
        self.workers = workers
        self.env = env
        self.prod = prod
        self.data = root / "data"
        quiet = root / "no-reload"
        quiet.mkdir()
        full = {k: v for k, v in os.environ.items() if not k.startswith("HOLOVITALS_")}
        full.update(
            HOLOVITALS_DATA_DIR=str(self.data), HOLOVITALS_FRONTEND_PORT=str(self.front),
            HOLOVITALS_BACKEND_PORT=str(self.back), HOLOVITALS_SANDBOX_PORT=str(self.ehr),
            REFLEX_HOT_RELOAD_OVERRIDE_PATHS=str(quiet),
            **{f"HOLOVITALS_WORKERS_{f.upper()}": str(n) for f, n in (workers or {}).items()},
            **env,
        )  # fmt: skip
        self.log_path = root / "up.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "holovitals-sync"),
                "up",
                "--demo",
                *(["--prod"] if prod else []),
            ],
            cwd=root,
            env=full,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.front if self.prod else self.back}/api"

    def wait_ready(self, timeout: float = 600) -> None:
        """Until every worker pool reports in and the UI answers (SystemExit otherwise)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"up --demo exited; see {self.log_path}")
            try:
                health = httpx.get(f"{self.api}/health", timeout=5).json()
                queues = health.get("queues", {})
                workers = {f: q["workers"] for f, q in queues.items()}
                wanted = self.workers or {f: q["expected_workers"] for f, q in queues.items()}
                page = httpx.get(f"http://127.0.0.1:{self.front}/", timeout=5).status_code
                if workers and workers == wanted and page == 200:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        raise SystemExit(f"up --demo never became ready; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
