"""Fault tests: private services a test may stop, restart or kill, and real processes.

    private_redis   a redis-server of this session on a free loopback port (no persistence)
    private_pg      a PostgreSQL cluster of this session (initdb in a temp dir, free port)
    fault_env       a fresh migrated database on private_pg, private_redis flushed, and the
                    HOLOVITALS_* settings this process and the workers it starts share
    ehr             the sandbox EHR in its own process (8 patients), reset per test
    pools           `rq worker-pool` processes exactly as `holovitals-sync up` starts them

The machine's shared PostgreSQL and Redis are never restarted: other suites use them.
Tests marked `faults_long` (bigger data, more kills) run only with HOLOVITALS_FAULTS_LONG=1;
CI runs the short forms.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import redis
import sqlalchemy as sa
from sqlmodel import func, select

from holovitals_sync.adapters import content_hash
from holovitals_sync.adapters.generic import PROFILE
from holovitals_sync.config import get_settings
from holovitals_sync.db import create_db_engine, session_scope
from holovitals_sync.models import EHRConnection, RecordError, SyncedRecord
from holovitals_sync.runtime import worker_command
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.server import SandboxServer
from tests.factories import make_connection
from tests.process_env import holovitals_env
from tests.stored import local_hashes  # noqa: F401 (the suite imports it from here)
from tests.waiting import wait_for

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: kills, restarts and misbehaving services")
    config.addinivalue_line(
        "markers", "faults_long: long fault variant; runs only with HOLOVITALS_FAULTS_LONG=1"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="long fault variant: set HOLOVITALS_FAULTS_LONG=1")
    for item in items:
        if "/faults/" not in str(item.path):
            continue
        item.add_marker(pytest.mark.faults)
        if "faults_long" in item.keywords and os.environ.get("HOLOVITALS_FAULTS_LONG") != "1":
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- private Redis ---------------------------------------------------------------------


class PrivateRedis:
    """A redis-server that tests may stop and start again on the same port (data lost)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for(self.ping, timeout=20)

    def ping(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_for: float = 1.0) -> None:
        self.stop()
        time.sleep(down_for)  # long enough for clients to notice the outage
        self.start()


@pytest.fixture(scope="session")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


# ---- private PostgreSQL ----------------------------------------------------------------


class PrivatePostgres:
    """A throwaway cluster. initdb refuses to run as root, so as root it runs as the
    `postgres` system user (runuser) in a directory that user owns."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hv-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        )

    def _ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "30",
            action,
            *extra,
        )

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        """Fast restart: every open session is cut, as in a crash-free failover."""
        self._ctl("restart", "-m", "fast")

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        name = f"hv_fault_{uuid.uuid4().hex[:10]}"
        engine = create_db_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    def cleanup(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already down
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    if PG_BIN is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    cluster = PrivatePostgres()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


# ---- settings shared with the workers ------------------------------------------------


@pytest.fixture
def fault_env(
    private_pg: PrivatePostgres, private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh database on the private cluster; returns its URL."""
    if not private_redis.ping():
        private_redis.start()  # a previous test left it down
    with redis.Redis.from_url(private_redis.url) as client:
        client.flushall()
    # Retries re-enqueue at once unless a test says otherwise (a scheduled retry waits for
    # the pool's scheduler, whose lock a SIGKILLed pool keeps for a while).
    with holovitals_env(
        monkeypatch,
        private_pg.new_database(),
        private_redis.url,
        sync_batch_size=40,
        sync_bulk_batch_size=40,
        workers_sync=1,
        workers_webhooks=1,
        retry_backoff=0,
    ) as url:
        yield url


# ---- the sandbox EHR -------------------------------------------------------------------


@pytest.fixture(scope="module")
def ehr_server() -> Iterator[SandboxServer]:
    """The sandbox in its own process, as `holovitals-sync sandbox` runs it."""
    with SandboxServer(SandboxConfig(patients=8, seed=99), in_subprocess=True) as server:
        yield server


@pytest.fixture
def ehr(ehr_server: SandboxServer) -> Iterator[SandboxServer]:
    ehr_server.reset()
    ehr_server.configure(
        default_page_size=50,
        export_polls_before_complete=0,
        export_retry_after=0.1,
        export_file_max_lines=60,
        token_lifetime_seconds=300,
    )
    yield ehr_server
    ehr_server.clear_faults()


@pytest.fixture
def connection(fault_env: str, ehr: SandboxServer) -> EHRConnection:
    with session_scope() as session:
        return make_connection(
            session,
            "Sandbox General",
            base_url=ehr.base_url,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            scopes="system/*.read system/*.write",
        )


def remote_resources(
    ehr: SandboxServer, types: tuple[str, ...] = PROFILE.resource_types
) -> list[object]:
    """Every resource the sandbox serves for `types`, read over FHIR search like a client."""
    headers = {"Authorization": f"Bearer {ehr.token()}", "Accept": "application/fhir+json"}
    found: list[object] = []
    with httpx.Client(headers=headers, timeout=30) as client:
        for rtype in types:
            url: str | None = f"{ehr.base_url}/{rtype}?_count=1000"
            while url:
                bundle = client.get(url).raise_for_status().json()
                found += [entry.get("resource") for entry in bundle.get("entry") or []]
                url = next(
                    (
                        link["url"]
                        for link in bundle.get("link") or []
                        if link.get("relation") == "next"
                    ),
                    None,
                )
    return found


def remote_hashes(ehr: SandboxServer) -> dict[tuple[str, str], str]:
    """(type, id) -> content hash of what the sandbox serves now."""
    return {
        (r["resourceType"], r["id"]): content_hash(r)
        for r in remote_resources(ehr)
        if isinstance(r, dict)
    }


def record_count(connection_id: int) -> int:
    with session_scope() as session:
        return session.exec(
            select(func.count())
            .select_from(SyncedRecord)
            .where(SyncedRecord.connection_id == connection_id)
        ).one()


def error_rows(job_id: int) -> list[RecordError]:
    with session_scope() as session:
        return list(
            session.exec(
                select(RecordError).where(RecordError.job_id == job_id).order_by(RecordError.id)
            )
        )


def assert_matches_sandbox(connection_id: int, ehr: SandboxServer) -> None:
    """Exactly the sandbox's resources, content for content, each stored once."""
    expected = remote_hashes(ehr)
    local = local_hashes(connection_id)
    assert set(local) == set(expected), (len(local), len(expected))
    assert local == expected
    assert record_count(connection_id) == len(expected)  # no duplicate rows either


# ---- worker pools ----------------------------------------------------------------------


class Pools:
    """`rq worker-pool` per queue family, the command `up` and the README use."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, family: str = "sync") -> subprocess.Popen:
        argv = worker_command(get_settings(), family)
        with open(self.log_dir / f"{family}-{len(self.procs)}.log", "wb") as log:
            proc = subprocess.Popen(
                argv,
                env=dict(os.environ),
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL the pool, its workers and their work horses, all at once."""
        try:
            family = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
        except psutil.NoSuchProcess:
            family = []
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        # Killed rather than stopped warmly: a warm stop waits for a horse that may sit in
        # a request the test slowed down on purpose, and the next test gets a fresh Redis
        # database and a fresh PostgreSQL database anyway.
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-4000:] for p in sorted(self.log_dir.glob("*.log"))
        )


@pytest.fixture
def pools(fault_env: str, tmp_path: Path) -> Iterator[Pools]:
    running = Pools(tmp_path)
    yield running
    running.stop_all()
