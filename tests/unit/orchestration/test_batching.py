"""Batches commit only checkpoints whose pages they fully cover; upsert rows are deduplicated;
a full sync batches by the bulk size."""

from __future__ import annotations

import pytest

from holovitals_sync.adapters import FetchedPage
from holovitals_sync.config import get_settings
from holovitals_sync.models import JobType, SyncJob
from holovitals_sync.services.orchestration.batching import batches
from holovitals_sync.services.orchestration.inbound import batch_size_for
from holovitals_sync.services.orchestration.prefetch import prefetched
from holovitals_sync.services.orchestration.upsert import dedupe, patient_ref


def page(start: int, count: int, mark: str, cursor: dict | None = None) -> FetchedPage:
    resources = [{"resourceType": "Observation", "id": str(i)} for i in range(start, start + count)]
    return FetchedPage(resources, {"page": mark}, cursor or {})


def test_batches_carry_the_checkpoint_of_the_last_complete_page():
    pages = [page(0, 3, "a"), page(3, 4, "b", {"Observation": "t1"}), page(7, 1, "c")]
    out = list(batches(pages, 4))
    assert [len(b.resources) for b in out] == [4, 4]
    # The first batch ends inside page b: only page a is complete.
    assert out[0].checkpoint == {"page": "a"} and out[0].cursor == {}
    assert out[1].checkpoint == {"page": "c"} and out[1].cursor == {"Observation": "t1"}


def test_a_batch_ending_mid_page_without_a_complete_page_keeps_the_last_checkpoint():
    out = list(batches([page(0, 10, "a")], 4))
    assert [b.checkpoint for b in out] == [None, None, {"page": "a"}]


def test_empty_pages_still_commit_their_checkpoint_and_cursor():
    out = list(batches([page(0, 0, "a", {"Patient": "t"})], 100))
    assert len(out) == 1 and out[0].resources == [] and out[0].cursor == {"Patient": "t"}


def test_prefetch_keeps_order_and_reraises():
    assert list(prefetched(iter(range(50)))) == list(range(50))

    def broken():
        yield 1
        raise ValueError("boom")

    got = []
    try:
        for item in prefetched(broken()):
            got.append(item)
    except ValueError:
        got.append("raised")
    assert got == [1, "raised"]


def test_dedupe_and_patient_refs():
    rows = [
        {"resourceType": "Patient", "id": "p", "v": 1},
        {"resourceType": "Patient", "id": "p", "v": 2},
        {"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p"}},
        {"id": "no-type"},
    ]
    unique = dedupe(rows)
    assert [r.get("v") for r in unique] == [2, None]
    assert [patient_ref(r) for r in unique] == ["Patient/p", "Patient/p"]


@pytest.mark.parametrize(
    ("job_type", "expected"),
    [
        (JobType.FULL, 700),  # export or pages: a whole population
        (JobType.INCREMENTAL, 70),
        (JobType.PATIENT, 70),
        (JobType.RESOURCE, 70),
    ],
)
def test_a_full_sync_batches_by_the_bulk_size_whatever_it_reads(
    job_type: JobType, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOLOVITALS_SYNC_BATCH_SIZE", "70")
    monkeypatch.setenv("HOLOVITALS_SYNC_BULK_BATCH_SIZE", "700")
    get_settings.cache_clear()
    try:
        assert batch_size_for(SyncJob(connection_id=1, job_type=job_type)) == expected
    finally:
        get_settings.cache_clear()
