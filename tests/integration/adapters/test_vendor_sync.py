"""Each adapter against the sandbox in its own vendor mode, over real HTTP.

Per mode: test connection, full sync equal to the sandbox's data, incremental sync after a
clinic day that finds exactly the changed records (by `_lastUpdated` or the vendor's
fallback plus content hashes), and resuming from a checkpoint.
"""

from __future__ import annotations

from typing import Any

from holovitals_sync.adapters import FetchedPage, adapter_for, content_hash
from tests.integration.adapters.conftest import CLINICAL, VendorEnv


def _collect(pages: Any) -> tuple[dict[str, str], dict[str, str], list[FetchedPage]]:
    """(key -> hash, merged cursor, pages); fails on an id seen twice in one run."""
    hashes: dict[str, str] = {}
    cursor: dict[str, str] = {}
    kept = []
    for page in pages:
        for res in page.resources:
            key = f"{res['resourceType']}/{res['id']}"
            assert key not in hashes, f"{key} delivered twice"
            hashes[key] = content_hash(res)
        cursor |= page.cursor
        kept.append(page)
    return hashes, cursor, kept


def test_connection_steps_all_pass(env: VendorEnv) -> None:
    with adapter_for(env.spec) as adapter:
        steps = adapter.test_connection()
    assert [s.name for s in steps] == [
        "discovery",
        "token",
        "capability_statement",
        "patient_search",
    ]
    assert all(s.ok for s in steps), steps


def test_full_sync_matches_sandbox(env: VendorEnv) -> None:
    with adapter_for(env.spec) as adapter:
        method = adapter.capabilities.full_sync
        hashes, cursor, _ = _collect(adapter.fetch_full(CLINICAL))
    assert hashes == env.hashes(CLINICAL)
    assert set(cursor) == set(CLINICAL)
    paths = {r["path"] for r in env.fhir_requests()}
    if method.startswith("export"):
        assert any(p.endswith("$export") for p in paths)
    else:
        assert not any(p.endswith("$export") for p in paths)


def test_incremental_finds_exactly_the_changes(env: VendorEnv) -> None:
    with adapter_for(env.spec) as adapter:
        before, cursor, _ = _collect(adapter.fetch_full(CLINICAL))
        day = env.server.clinic_day(changes=12)
        after, new_cursor, _ = _collect(adapter.fetch_incremental(CLINICAL, cursor=cursor))
        methods = adapter.capabilities.incremental
    changed = {f"{t}/{i}" for t, ids in day["changed"].items() for i in ids}
    # A record edited twice can come back to its old content: hashes decide, not ids.
    expected = {k for k, h in env.hashes(CLINICAL).items() if before.get(k) != h}
    differs = {k for k, h in after.items() if before.get(k) != h}
    assert expected <= changed and len(expected) >= len(changed) - 2
    assert differs == expected
    assert set(new_cursor) == set(CLINICAL)
    assert all(new_cursor[t] >= cursor[t] for t in CLINICAL)
    by_date = [t for t in CLINICAL if methods[t] in ("_lastUpdated", "bulk_since")]
    if by_date:  # where the server filters by date, far fewer records come back
        returned = [k for k in after if k.split("/")[0] in by_date]
        assert 0 < len(returned) < len([k for k in before if k.split("/")[0] in by_date]) / 2


def test_resume_from_a_checkpoint_loses_and_repeats_nothing(env: VendorEnv) -> None:
    spec = env.spec.__class__(**{**env.spec.__dict__, "page_size": 7})
    with adapter_for(spec) as adapter:
        first_pages = []
        for page in adapter.fetch_full(["Patient", "Observation"]):
            first_pages.append(page)
            if len(first_pages) == 3:
                break
        seen = {f"{r['resourceType']}/{r['id']}" for p in first_pages for r in p.resources}
        rest, _, _ = _collect(
            adapter.fetch_full(["Patient", "Observation"], resume=first_pages[-1].checkpoint)
        )
    assert not seen & set(rest)
    assert seen | set(rest) == set(env.hashes(["Patient", "Observation"]))


def test_fetch_patient_and_resource_type(env: VendorEnv) -> None:
    with adapter_for(env.spec) as adapter:
        one, _, _ = _collect(adapter.fetch_patient("pt-00002"))
        obs, cursor, _ = _collect(adapter.fetch_resource_type("Observation"))
    store = env.server.state.store
    expected = {
        f"{t}/{r.id}" for t in CLINICAL for r in store.candidates(t) if r.patient == "pt-00002"
    }
    assert set(one) == expected
    assert set(obs) == set(env.hashes(["Observation"])) and "Observation" in cursor


def test_expired_next_link_restarts_the_search(env_of: Any) -> None:
    env = env_of("generic")
    stale = {
        "task": 0,
        "state": {
            "next": f"{env.server.base_url}?_getpages=gone&_getpagesoffset=5&_count=5",
            "started": "2026-01-01T00:00:00.000Z",
        },
    }
    with adapter_for(env.spec) as adapter:
        got, cursor, _ = _collect(adapter.fetch_resource_type("Observation", resume=stale))
    assert set(got) == set(env.hashes(["Observation"]))
    assert cursor == {"Observation": "2026-01-01T00:00:00.000Z"}  # the run's own start


def test_an_export_since_names_what_the_ehr_deleted(env_of: Any) -> None:
    """Where incremental sync reads a Bulk Data export `_since` (eClinicalWorks), the
    manifest's `deleted` files (Bundles of DELETE entries) come back as deletes (#22)."""
    env = env_of("eclinicalworks")
    with adapter_for(env.spec) as adapter:
        bulk = [t for t in CLINICAL if adapter.capabilities.incremental[t] == "bulk_since"]
        assert bulk
        _, cursor, _ = _collect(adapter.fetch_full(CLINICAL))
        store = env.server.state.store
        gone = [(t, store.candidates(t)[0].id) for t in bulk]
        for rtype, rid in gone:
            store.delete(rtype, rid)
        changed, _, pages = _collect(adapter.fetch_incremental(CLINICAL, cursor=cursor))
    assert {d for p in pages for d in p.deleted} == set(gone)
    assert not {f"{t}/{i}" for t, i in gone} & set(changed)
