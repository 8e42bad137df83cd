"""Full and incremental inbound syncs on real RQ workers give exactly the sandbox's data."""

from __future__ import annotations

from holovitals_sync.models import JobType

from .conftest import local_hashes, sandbox_hashes, start, wait_status


def test_full_then_incremental_sync_mirror_the_sandbox(connection, ehr, workers):
    workers.start(1)
    job = wait_status(start(connection.id), "completed", "failed")
    assert job.status.value == "completed", job.last_error
    expected = sandbox_hashes(ehr)
    assert local_hashes(connection.id) == expected
    assert job.created == len(expected) and job.updated == 0 and job.attempts == 1

    day = ehr.clinic_day(changes=15, seed=5)
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "completed", "failed")
    assert job.status.value == "completed", job.last_error
    assert local_hashes(connection.id) == sandbox_hashes(ehr)
    changed = sum(len(ids) for ids in day["changed"].values())
    assert job.created + job.updated == changed
    assert job.created == sum(len(ids) for ids in day["created"].values())

    # Nothing changed since: a second incremental run writes nothing.
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "completed", "failed")
    assert job.created == job.updated == 0
