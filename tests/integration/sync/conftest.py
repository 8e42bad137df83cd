"""Sync tests: a migrated database (SQLite and PostgreSQL), Redis db 15, a small sandbox EHR
over HTTP, and real `rq worker` processes started and killed by the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from rq import Worker

from holovitals_sync.adapters import content_hash
from holovitals_sync.adapters.generic import PROFILE
from holovitals_sync.db import session_scope
from holovitals_sync.models import EHRConnection, JobType, Priority, RequesterKind, SyncJob
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.server import SandboxServer
from holovitals_sync.services import audit
from holovitals_sync.services.orchestration import JobRequest, queueing, start_job
from tests.conftest import REDIS_TEST_URL
from tests.factories import make_connection
from tests.process_env import holovitals_env
from tests.realserver import real_server  # noqa: F401 (a real FHIR server, as a fixture)
from tests.stored import local_hashes  # noqa: F401 (the suite imports it from here)
from tests.waiting import wait_for

RQ = str(Path(sys.executable).parent / "rq")
QUEUES = ["sync.high", "sync.default", "sync.low"]
TESTER = audit.Actor.system("tests")


@pytest.fixture(scope="session")
def small_ehr() -> Iterator[SandboxServer]:
    """Eight patients (~400 resources): enough for several batches and pages."""
    with SandboxServer(SandboxConfig(patients=8, seed=99)) as server:
        yield server


@pytest.fixture
def ehr(small_ehr: SandboxServer) -> Iterator[SandboxServer]:
    small_ehr.reset()
    small_ehr.configure(
        default_page_size=50,
        export_polls_before_complete=0,
        export_retry_after=0.1,
        export_file_max_lines=60,
    )
    yield small_ehr
    small_ehr.clear_faults()


@pytest.fixture
def sync_db(database_url: str, redis_client, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings for this process and the workers it starts: DB, Redis, small batches."""
    # Retries re-enqueue at once: a scheduled retry waits for a live RQ scheduler, and the
    # one of a SIGKILLed worker holds its lock for another minute.
    with holovitals_env(
        monkeypatch,
        database_url,
        REDIS_TEST_URL,
        sync_batch_size=40,
        sync_bulk_batch_size=40,
        retry_backoff=0,
    ) as url:
        yield url


@pytest.fixture
def connection(sync_db: str, ehr: SandboxServer) -> EHRConnection:
    with session_scope() as session:
        return make_connection(
            session,
            "Sandbox General",
            base_url=ehr.base_url,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            scopes="system/*.read system/*.write",
        )


class Workers:
    """`rq worker` processes in their own process groups, so a test can SIGKILL one whole."""

    def __init__(self, log_dir: Path) -> None:
        self.procs: list[subprocess.Popen] = []
        self.log_dir = log_dir

    def start(self, count: int = 1, queues: list[str] = QUEUES) -> list[subprocess.Popen]:
        started = []
        for _ in range(count):
            argv = [
                RQ,
                "worker",
                "-c",
                "workers.settings",
                "-w",
                "workers.worker.HoloVitalsWorker",
                "--with-scheduler",
                *queues,
            ]
            log = open(self.log_dir / f"worker-{len(self.procs) + len(started)}.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen(
                argv,
                env=dict(os.environ),
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            started.append(proc)
        self.procs += started
        return started

    def registered(self, count: int, timeout: float = 60.0) -> None:
        """Wait until `count` workers are registered on the sync queues: a full sync counts
        them when it plans its parts, and a worker still importing is not counted."""
        queue = queueing.queue_for(Priority.DEFAULT)
        wait_for(lambda: Worker.count(connection=queue.connection, queue=queue) >= count, timeout)

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL the worker and its work horse (RQ puts the horse in its own group)."""
        family = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
        for member in family:
            member.send_signal(signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def workers(sync_db: str, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()


def job_row(job_id: int) -> SyncJob:
    with session_scope() as session:
        return session.get(SyncJob, job_id)


def wait_status(job_id: int, *statuses: str, timeout: float = 60.0) -> SyncJob:
    def done() -> SyncJob | None:
        row = job_row(job_id)
        return row if row.status.value in statuses else None

    return wait_for(done, timeout)  # type: ignore[return-value]


def sandbox_hashes(ehr: SandboxServer) -> dict[tuple[str, str], str]:
    """(type, id) -> content hash of every live resource the generic adapter syncs."""
    store = ehr.state.store
    out = {}
    with store.lock:
        for rtype in PROFILE.resource_types:
            for rec in store.candidates(rtype):
                out[(rtype, rec.id)] = content_hash(rec.resource())
    return out


def start(connection_id: int, job_type: JobType = JobType.FULL, **kw) -> int:
    """Start a job through the service, as the API does; returns its id."""
    with session_scope() as session:
        job = start_job(
            session,
            request=JobRequest(connection_id=connection_id, job_type=job_type, **kw),
            requested_by_kind=RequesterKind.SYSTEM,
            requested_by="tests",
            actor=TESTER,
        )
        return job.id


def wait_running(job_id: int, min_fetched: int = 1, timeout: float = 60.0) -> SyncJob:
    def running() -> SyncJob | None:
        row = job_row(job_id)
        return row if row.status.value == "running" and row.fetched >= min_fetched else None

    return wait_for(running, timeout, interval=0.05)  # type: ignore[return-value]
