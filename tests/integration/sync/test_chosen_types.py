"""A connection syncs only the resource types chosen for it (#23): its export asks for them
alone, its paged syncs page them alone, and nothing else is stored. Real workers, the
sandbox over HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from holovitals_sync.adapters import adapter_for
from holovitals_sync.db import session_scope
from holovitals_sync.models import EHRConnection, JobType
from holovitals_sync.services.connection_spec import connection_spec
from holovitals_sync.services.connections import ConnectionPatch, update_connection
from holovitals_sync.services.orchestration import InvalidJob
from tests.factories import SYSTEM
from tests.integration.sync.conftest import (
    job_row,
    local_hashes,
    sandbox_hashes,
    start,
    wait_for,
    wait_running,
    wait_status,
)

CHOSEN = ["Patient", "Observation", "Condition"]


def _patch(connection_id: int, **fields: object) -> None:
    with session_scope() as session:
        row = session.get(EHRConnection, connection_id)
        update_connection(session, row=row, patch=ConnectionPatch(**fields), actor=SYSTEM)


def _only(hashes: dict[tuple[str, str], str], types: list[str]) -> dict[tuple[str, str], str]:
    return {key: h for key, h in hashes.items() if key[0] in types}


def _gets(ehr) -> list[dict]:
    return [r for r in ehr.stats()["recent"] if r["method"] == "GET"]


def test_a_full_sync_exports_and_stores_only_the_chosen_types(connection, ehr, workers):
    _patch(connection.id, resource_types=CHOSEN)
    workers.start(1)
    ehr.state.stats.reset()
    job = wait_status(start(connection.id), "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error
    (kick_off,) = [r for r in _gets(ehr) if r["path"].endswith("$export")]
    assert set(parse_qs(kick_off["query"])["_type"][0].split(",")) == set(CHOSEN)
    everything = sandbox_hashes(ehr)
    assert {rtype for rtype, _ in everything} > set(CHOSEN)  # the EHR has more than chosen
    assert local_hashes(connection.id) == _only(everything, CHOSEN)


def test_paged_syncs_page_only_the_chosen_types(connection, ehr, workers):
    _patch(connection.id, resource_types=CHOSEN, full_sync_via="search")
    workers.start(1)
    ehr.state.stats.reset()
    job = wait_status(start(connection.id), "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error
    paged = {r["path"].rsplit("/", 1)[-1] for r in _gets(ehr)} - {"metadata", "smart-configuration"}
    assert paged == set(CHOSEN)
    ehr.clinic_day(changes=60, seed=21)
    job = wait_status(start(connection.id, JobType.INCREMENTAL), "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error
    assert local_hashes(connection.id) == _only(sandbox_hashes(ehr), CHOSEN)
    # One patient's sync ($everything where the server offers it) keeps to them too.
    patient = next(pid for rtype, pid in local_hashes(connection.id) if rtype == "Patient")
    job = wait_status(start(connection.id, JobType.PATIENT, patient_id=patient), "completed",
                      "failed", timeout=120)  # fmt: skip
    assert job.status.value == "completed", job.last_error
    assert job.fetched > 1  # the patient and their records
    assert {rtype for rtype, _ in local_hashes(connection.id)} == set(CHOSEN)
    # All types again: the next full sync brings the rest.
    _patch(connection.id, resource_types=[])
    job = wait_status(start(connection.id), "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error
    assert local_hashes(connection.id) == sandbox_hashes(ehr)


def test_types_taken_off_the_list_keep_their_records(connection, ehr, workers):
    """A full sync tombstones what the EHR no longer returns, type by type: a type the
    connection no longer syncs is not among them, so its records stay as they were, and
    the run does not warn that the EHR returned none of them (the mass-delete guard's
    words, which would keep them too, but only after crying wolf)."""
    from sqlmodel import func, select

    from holovitals_sync.models import RecordError, SyncedRecord

    workers.start(1)
    job = wait_status(start(connection.id), "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error
    before = local_hashes(connection.id)
    assert {rtype for rtype, _ in before} > set(CHOSEN)
    _patch(connection.id, resource_types=CHOSEN)
    job = wait_status(start(connection.id), "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error
    assert local_hashes(connection.id) == before
    with session_scope() as session:
        deleted = select(func.count()).where(
            SyncedRecord.connection_id == connection.id, SyncedRecord.deleted
        )
        assert session.exec(deleted).one() == 0
        warned = select(RecordError.message).where(RecordError.job_id == job.id)
        assert session.exec(warned).all() == []


def test_a_run_resumed_after_its_types_changed_reads_its_first_list(connection, ehr, workers):
    """A checkpoint counts positions in the run's list of types. Resumed with the list the
    administrator changed meanwhile, a run would start at the wrong type and treat types it
    never read as read in full (tombstoning, or the guard's warnings). It keeps its first
    list; the change applies from the next run."""
    from sqlmodel import func, select

    from holovitals_sync.models import RecordError, SyncedRecord

    (first,) = workers.start(1)
    assert wait_status(start(connection.id), "completed").status.value == "completed"
    before = local_hashes(connection.id)
    _patch(connection.id, resource_types=CHOSEN, full_sync_via="search",
           concurrency_limit=1, stream_limit=1, page_size=10)  # fmt: skip
    ehr.set_faults(latency_ms=60)
    job_id = start(connection.id)
    wait_running(job_id, min_fetched=120, timeout=120)
    workers.kill(first)
    pinned = job_row(job_id).checkpoint["run_types"]
    assert sorted(pinned) == sorted(CHOSEN)
    _patch(connection.id, resource_types=[])  # every type again, while the run is stopped
    ehr.set_faults(latency_ms=0)
    workers.start(1)
    job = wait_for(
        lambda: row if (row := job_row(job_id)).status.value in ("completed", "failed") else None,
        timeout=180,
        interval=1,
    )
    assert job.status.value == "completed", job.last_error
    assert job.checkpoint["run_types"] == pinned
    assert local_hashes(connection.id) == before
    with session_scope() as session:
        warned = select(RecordError.message).where(RecordError.job_id == job_id)
        assert session.exec(warned).all() == []
        deleted = select(func.count()).where(
            SyncedRecord.connection_id == connection.id, SyncedRecord.deleted
        )
        assert session.exec(deleted).one() == 0


def test_a_generic_servers_chosen_type_beyond_the_clinical_ones_syncs(connection, workers):
    """A generic server declares its own types: one chosen beyond the eight clinical types
    the generic profile starts from is synced, and a job for it alone is taken."""
    _patch(connection.id, resource_types=["Patient", "QuestionnaireResponse"])
    workers.start(1)
    job = wait_status(start(connection.id, JobType.RESOURCE, resource_type="QuestionnaireResponse"),
                      "completed", "failed", timeout=120)  # fmt: skip
    assert job.status.value == "completed", job.last_error


def test_a_job_for_a_type_not_chosen_is_refused(connection):
    _patch(connection.id, resource_types=CHOSEN)
    with pytest.raises(InvalidJob) as refused:
        start(connection.id, JobType.RESOURCE, resource_type="Encounter")
    assert "does not sync 'Encounter'" in str(refused.value)
    assert "Condition, Observation, Patient" in str(refused.value)


def test_the_connection_test_names_a_chosen_type_the_server_does_not_offer(connection):
    _patch(connection.id, resource_types=CHOSEN)
    with session_scope() as session:
        spec = connection_spec(session.get(EHRConnection, connection.id))
    with adapter_for(spec) as adapter:
        steps = {s.name: s for s in adapter.test_connection()}
    assert steps["resource_types"].ok, steps["resource_types"]
    assert steps["resource_types"].detail.startswith("syncs 3 of the ")

    _patch(connection.id, resource_types=[*CHOSEN, "Questionnaire"])  # a generic server: kept
    with session_scope() as session:
        spec = connection_spec(session.get(EHRConnection, connection.id))
    with adapter_for(spec) as adapter:
        steps = {s.name: s for s in adapter.test_connection()}
        assert set(adapter.profile.resource_types) == set(CHOSEN)  # what it offers is synced
    assert not steps["resource_types"].ok
    assert steps["resource_types"].detail == "the server does not offer Questionnaire"
    assert all(s.ok for name, s in steps.items() if name != "resource_types"), steps


def test_an_ehr_event_about_a_type_not_chosen_makes_no_job(connection):
    from holovitals_sync.models import InboundEvent, InboundStatus, SyncJob
    from holovitals_sync.services.event_jobs import NOT_SYNCED, process_event

    _patch(connection.id, resource_types=CHOSEN)
    ids = {}
    with session_scope() as session:
        for rtype in ("Encounter", "Observation"):
            event = InboundEvent(connection_id=connection.id, event_type="event-notification",
                                 resource_type=rtype, resource_id="x1",
                                 patient_ref="Patient/p-1")  # fmt: skip
            session.add(event)
            session.flush()
            ids[rtype] = event.id
    assert process_event(ids["Encounter"]) == process_event(ids["Observation"]) == "processed"
    with session_scope() as session:
        skipped, synced = (session.get(InboundEvent, ids[t]) for t in ("Encounter", "Observation"))
        assert (skipped.job_id, skipped.rejection_reason) == (None, NOT_SYNCED)
        job = session.get(SyncJob, synced.job_id)
        assert (job.job_type, job.patient_id) == (JobType.PATIENT, "p-1")
        assert skipped.status is synced.status is InboundStatus.PROCESSED
