"""A migrated database (SQLite and PostgreSQL), records to conflict over, a fake EHR."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from holovitals_sync import migrations
from holovitals_sync.adapters import RemoteChanged, WriteOutcome
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import Direction, JobType, RequesterKind, SyncedRecord, SyncJob
from tests.factories import make_connection
from tests.integration.sync.conftest import (  # noqa: F401 (the sandbox scenario's fixtures)
    connection,
    ehr,
    small_ehr,
    sync_db,
    workers,
)


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    """The process's database is a fresh, migrated one (both dialects)."""
    migrations.upgrade(database_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield database_url
    get_engine().dispose()


def patient(version: str = "1", **fields: Any) -> dict[str, Any]:
    body = {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": version},
        "gender": "male",
        "birthDate": "1970-01-01",
        "active": True,
    }
    return body | fields


@dataclass
class World:
    connection_id: int
    job_id: int


@pytest.fixture
def world(db: str) -> World:
    with session_scope() as session:
        connection = make_connection(session, "Conflict Hospital")
        job = SyncJob(
            connection_id=connection.id,
            job_type=JobType.INCREMENTAL,
            direction=Direction.BIDIRECTIONAL,
            requested_by_kind=RequesterKind.SYSTEM,
        )
        session.add(job)
        session.flush()
        return World(connection.id, job.id)


def make_record(
    world: World,
    *,
    base: dict,
    local: dict | None = None,
    remote_id: str = "p1",
    resource_type: str = "Patient",
    dirty: bool | None = None,
) -> int:
    local = copy.deepcopy(local if local is not None else base)
    with session_scope() as session:
        record = SyncedRecord(
            connection_id=world.connection_id,
            resource_type=resource_type,
            remote_id=remote_id,
            patient_ref=f"Patient/{remote_id}",
            base_body=base,
            local_body=local,
            remote_body=base,
            remote_version=base.get("meta", {}).get("versionId"),
            dirty=(local != base) if dirty is None else dirty,
        )
        session.add(record)
        session.flush()
        return record.id


@dataclass
class FakeEHR:
    """An adapter stand-in: versioned writes with If-Match, and reads."""

    current: dict[str, Any]
    writes: list[tuple[dict, str | None]] = field(default_factory=list)
    closed: int = 0

    @property
    def version(self) -> str:
        return self.current["meta"]["versionId"]

    def write(self, resource: dict, *, remote_version: str | None = None) -> WriteOutcome:
        self.writes.append((resource, remote_version))
        if remote_version != self.version:
            raise RemoteChanged("412 version moved on", status=412)
        body = {**resource, "meta": {"versionId": str(int(self.version) + 1)}}
        self.current = body
        return WriteOutcome(200, False, body["id"], self.version, copy.deepcopy(body))

    @property
    def client(self) -> FakeEHR:
        return self

    def read(self, resource_type: str, resource_id: str) -> dict:
        return copy.deepcopy(self.current)

    def close(self) -> None:
        self.closed += 1


def run_conflicts_worker(redis_url: str) -> None:
    """One `rq worker --burst` on the conflicts queues: it does what is queued, then exits."""
    argv = [str(Path(sys.executable).parent / "rq"), "worker", "-c", "workers.settings",
            "-w", "workers.worker.HoloVitalsWorker", "--burst",
            "conflicts.high", "conflicts.default", "conflicts.low"]  # fmt: skip
    env = {**os.environ, "HOLOVITALS_REDIS_URL": redis_url}
    root = Path(__file__).resolve().parents[3]
    subprocess.run(argv, cwd=root, env=env, check=True, timeout=90, capture_output=True)
