"""One full sync, several workers: a large full sync is cut into parts (export files, or
`_lastUpdated` windows of large types), each an ordinary sync job any free worker takes; the
parent adds up their counters and ends when they have all ended; a part that fails fails the
parent, and retrying the parent runs only that part again. Real workers, the sandbox over
HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from rq import Worker
from sqlmodel import select

from holovitals_sync.config import get_settings
from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    EHRConnection,
    JobStatus,
    Priority,
    SyncCheckpoint,
    SyncedRecord,
    SyncJob,
)
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.server import SandboxServer
from holovitals_sync.services.orchestration import (
    cancel_job,
    children,
    queueing,
    reconcile,
    retry_job,
    runner,
)
from tests.factories import make_connection
from tests.integration.sync.conftest import (
    TESTER,
    local_hashes,
    sandbox_hashes,
    start,
    wait_status,
)

COUNTERS = ("fetched", "created", "updated", "unchanged", "invalid")
# The server cuts a type into files of this many resources: only then is an export split.
FILE_LINES = 20


@pytest.fixture
def split_everything(sync_db, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every full sync is large enough to split (workers started after this inherit it)."""
    monkeypatch.setenv("HOLOVITALS_SYNC_SPLIT_ABOVE", "1")
    # Some tests plan in this process with no worker running.
    monkeypatch.setenv("HOLOVITALS_SYNC_SPLIT_MIN_WORKERS", "0")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _parts(parent_id: int) -> list[SyncJob]:
    with session_scope() as session:
        return list(
            session.exec(select(SyncJob).where(SyncJob.parent_id == parent_id).order_by(SyncJob.id))
        )


def _cursor(connection_id: int) -> dict[str, str]:
    with session_scope() as session:
        return {
            c.resource_type: c.cursor
            for c in session.exec(
                select(SyncCheckpoint).where(SyncCheckpoint.connection_id == connection_id)
            )
        }


def test_an_export_is_shared_by_its_files(connection, ehr, workers, split_everything):
    ehr.configure(export_file_max_lines=FILE_LINES)
    workers.start(2)
    job = wait_status(start(connection.id), "completed", "failed", timeout=180)
    assert job.status is JobStatus.COMPLETED, job.last_error
    parts = _parts(job.id)
    assert len(parts) >= 2 and {p.part["kind"] for p in parts} == {"export"}
    assert all(p.status is JobStatus.COMPLETED for p in parts)
    for name in COUNTERS:  # the parent adds up its parts
        assert getattr(job, name) == sum(getattr(p, name) for p in parts), name
    expected = sandbox_hashes(ehr)
    assert local_hashes(connection.id) == expected and job.created == len(expected)
    # Records belong to the whole run; the cursor moved once every part was done.
    with session_scope() as session:
        owners = set(
            session.exec(
                select(SyncedRecord.last_job_id).where(SyncedRecord.connection_id == connection.id)
            )
        )
    assert owners == {job.id}
    assert set(_cursor(connection.id)) >= {"Patient", "Observation"}

    # A second split full sync finds what the EHR deleted: what no part saw.
    gone = sorted(r.id for r in ehr.state.store.candidates("Observation"))[0]
    ehr.state.store.delete("Observation", gone)
    again = wait_status(start(connection.id), "completed", "failed", timeout=180)
    assert again.status is JobStatus.COMPLETED and len(_parts(again.id)) >= 2
    with session_scope() as session:
        row = session.exec(
            select(SyncedRecord).where(
                SyncedRecord.connection_id == connection.id, SyncedRecord.remote_id == gone
            )
        ).one()
    assert row.deleted and f"full sync {again.id}" in row.delete_reason
    assert again.deleted == 1


@pytest.fixture
def nextgen_ehr() -> Iterator[SandboxServer]:
    """A vendor whose full sync is a search per type (no export)."""
    with SandboxServer(SandboxConfig(patients=6, seed=11, vendor="nextgen")) as server:
        yield server


def test_a_search_per_type_is_shared_by_lastupdated_windows(
    sync_db, nextgen_ehr, workers, split_everything
):
    """Cut by type, the largest type's pages would still come one after another: large types
    are cut in `_lastUpdated` windows instead, each open tail read after every other part."""
    with session_scope() as session:
        cid = make_connection(
            session,
            "NextGen",
            vendor="nextgen",
            base_url=nextgen_ehr.base_url,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            scopes="system/*.read",
        ).id
    workers.start(2)
    # Planned with one worker, the fair share is the whole of the largest type: nothing cut.
    workers.registered(2)
    job = wait_status(start(cid), "completed", "failed", timeout=180)
    assert job.status is JobStatus.COMPLETED, job.last_error
    parts = _parts(job.id)
    cut = {p.part["types"][0] for p in parts if p.part.get("window")}
    assert cut and len(parts) > len(cut) + 1  # some type in several windows
    for rtype in cut:
        tails = [p for p in parts if p.part["types"] == [rtype] and p.part.get("last")]
        assert [t.part["window"][1] for t in tails] == [""]  # one open tail per cut type
    first = [p for p in parts if not p.part.get("last")]
    last = [p for p in parts if p.part.get("last")]
    assert min(p.started_at for p in last) >= max(p.finished_at for p in first)
    # Exactly the server's content: every resource in one window, none twice.
    store = nextgen_ehr.state.store
    stored = local_hashes(cid)
    assert (
        len(stored) == job.created == sum(len(store.candidates(t)) for t in {t for t, _ in stored})
    )
    assert {t for t, _ in stored} >= cut

    # A windowed type's missing record is no proof of a delete (offset paging in a window
    # can skip one while another changes): only the types searched whole are swept.
    whole = next(t for t in {t for t, _ in stored} - cut - {"Patient"})
    gone = {
        rtype: sorted(r.id for r in store.candidates(rtype))[0] for rtype in (sorted(cut)[0], whole)
    }
    for rtype, rid in gone.items():
        store.delete(rtype, rid)
    again = wait_status(start(cid), "completed", "failed", timeout=180)
    assert again.status is JobStatus.COMPLETED, again.last_error
    with session_scope() as session:
        deleted = {
            (r.resource_type, r.remote_id)
            for r in session.exec(
                select(SyncedRecord).where(SyncedRecord.connection_id == cid, SyncedRecord.deleted)
            )
        }
    assert deleted == {(whole, gone[whole])} and again.deleted == 1


def _planned_in_process(ehr: SandboxServer) -> int:
    """A NextGen full sync planned here, its first parts queued; the parent's id. Four
    workers are registered while it plans (the windows are cut for them) and take nothing."""
    with session_scope() as session:
        cid = make_connection(
            session,
            "NextGen",
            vendor="nextgen",
            base_url=ehr.base_url,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            scopes="system/*.read",
        ).id
    queue = queueing.queue_for(Priority.DEFAULT)
    idle = [Worker([queue], connection=queue.connection, name=f"idle-{n}") for n in range(4)]
    for worker in idle:
        worker.register_birth()
    try:
        parent_id = start(cid)
        runner.run_job(parent_id)
    finally:
        for worker in idle:
            worker.register_death()
    return parent_id


def _parent(job_id: int) -> SyncJob:
    with session_scope() as session:
        return session.get(SyncJob, job_id)


def test_a_held_back_tail_waits_for_its_finisher_not_for_reconcile(
    sync_db, nextgen_ehr, split_everything
):
    """The open tails are queued by the finisher once the other parts end; however long
    those take, the periodic reconcile must not take a tail for a lost job and queue it."""
    parent_id = _planned_in_process(nextgen_ehr)
    parts = _parts(parent_id)
    tails = [p.id for p in parts if p.part.get("last")]
    assert tails and all(p.status is JobStatus.QUEUED for p in parts if p.id not in tails)
    with session_scope() as session:  # hours later
        for part in session.exec(select(SyncJob).where(SyncJob.parent_id == parent_id)):
            part.created_at = part.created_at - timedelta(hours=3)
            session.add(part)
    reconcile()
    held = [p for p in _parts(parent_id) if p.id in tails]
    assert all(p.status is JobStatus.PENDING and p.rq_job_id is None for p in held)


def test_tails_are_not_read_after_a_failed_part_but_after_its_retry(
    sync_db, nextgen_ehr, workers, split_everything
):
    """A window that fails and runs again on a retry of the parent may meet resources that
    changed meanwhile and moved into its type's tail: the tail is read after it, not before."""
    parent_id = _planned_in_process(nextgen_ehr)
    cid = _parent(parent_id).connection_id
    parts = _parts(parent_id)
    broken = next(p for p in parts if p.part.get("window") and not p.part.get("last"))
    kept = dict(broken.part)
    with session_scope() as session:  # a window of a type the server does not have
        row = session.get(SyncJob, broken.id)
        row.part = {**kept, "types": ["Basic"]}
        session.add(row)
    workers.start(2)
    failed = wait_status(parent_id, "completed", "failed", timeout=180)
    assert failed.status is JobStatus.FAILED and f"(job {broken.id})" in failed.last_error
    tails = [p for p in _parts(parent_id) if p.part.get("last")]
    assert tails and all(
        t.status is JobStatus.CANCELLED and t.started_at is None for t in tails
    )  # never read while a window was missing

    with session_scope() as session:
        row = session.get(SyncJob, broken.id)
        row.part = kept
        session.add(row)
        retry_job(session, job_id=parent_id, actor=TESTER)
    done = wait_status(parent_id, "completed", "failed", timeout=180)
    assert done.status is JobStatus.COMPLETED, done.last_error
    fixed = next(p for p in _parts(parent_id) if p.id == broken.id)
    assert all(t.started_at >= fixed.finished_at for t in _parts(parent_id) if t.part.get("last"))
    store = nextgen_ehr.state.store
    stored = local_hashes(cid)
    assert (
        len(stored) == done.created == sum(len(store.candidates(t)) for t in {t for t, _ in stored})
    )


def test_an_export_of_one_file_per_type_stays_one_job(connection, ehr, workers, split_everything):
    ehr.configure(export_file_max_lines=0)  # one file per type
    workers.start(2)
    job = wait_status(start(connection.id), "completed", "failed", timeout=180)
    assert job.status is JobStatus.COMPLETED, job.last_error
    assert _parts(job.id) == []
    assert local_hashes(connection.id) == sandbox_hashes(ehr)
    assert job.created == len(sandbox_hashes(ehr))


def test_a_failed_part_fails_the_parent_and_a_retry_runs_only_that_part(
    connection, ehr, workers, split_everything
):
    ehr.configure(export_file_max_lines=FILE_LINES)
    parent_id = start(connection.id)
    runner.run_job(parent_id)  # the parent's own run, here: it plans and queues the parts
    parts = _parts(parent_id)
    assert len(parts) >= 2
    broken, kept = parts[0], dict(parts[0].part)
    with session_scope() as session:  # a part whose files the export does not have
        row = session.get(SyncJob, broken.id)
        row.part = {**kept, "kind": "search", "types": ["Basic"]}
        session.add(row)
    workers.start(2)
    failed = wait_status(parent_id, "completed", "failed", timeout=180)
    assert failed.status is JobStatus.FAILED
    assert f"1 of {len(parts)} parts did not complete; part (job {broken.id})" in failed.last_error
    attempts = {p.id: p.attempts for p in _parts(parent_id)}

    with session_scope() as session:
        row = session.get(SyncJob, broken.id)
        row.part = kept
        session.add(row)
        with pytest.raises(Exception, match="retry that one"):
            retry_job(session, job_id=broken.id, actor=TESTER)
        retry_job(session, job_id=parent_id, actor=TESTER)
    done = wait_status(parent_id, "completed", "failed", timeout=180)
    assert done.status is JobStatus.COMPLETED, done.last_error
    after = {p.id: p.attempts for p in _parts(parent_id)}
    assert after[broken.id] > attempts[broken.id]
    assert all(after[i] == attempts[i] for i in after if i != broken.id)  # not run again
    assert local_hashes(connection.id) == sandbox_hashes(ehr)


def test_cancelling_the_parent_cancels_its_parts(connection, ehr, split_everything):
    ehr.configure(export_file_max_lines=FILE_LINES)
    parent_id = start(connection.id)
    runner.run_job(parent_id)  # planned and queued; no worker takes them
    with session_scope() as session:
        cancel_job(session, job_id=parent_id, actor=TESTER)
    assert {p.status for p in _parts(parent_id)} == {JobStatus.CANCELLED}
    assert children.finish(parent_id) == "nothing"
    with session_scope() as session:
        assert session.get(EHRConnection, connection.id) is not None


def test_a_lone_worker_keeps_the_whole_job_and_its_streams(
    connection, ehr, workers, split_everything, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HOLOVITALS_SYNC_SPLIT_MIN_WORKERS", "2")  # the default
    get_settings.cache_clear()
    workers.start(1)
    job = wait_status(start(connection.id), "completed", "failed", timeout=180)
    assert job.status is JobStatus.COMPLETED, job.last_error
    assert _parts(job.id) == [] and job.fetched > 0
