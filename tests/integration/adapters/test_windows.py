"""A large type cut into `_lastUpdated` windows (#23): the server counts what each window
holds, the windows tile the whole time line (the last one open), and paging them one by one
brings every resource of the type exactly once."""

from __future__ import annotations

from holovitals_sync.adapters import adapter_for, windows

TYPE = "Observation"


def test_windows_tile_a_type_and_bring_each_resource_once(env_of) -> None:
    env = env_of("nextgen")  # `_lastUpdated` and `_summary=count` on every type
    with adapter_for(env.spec) as adapter:
        counter = windows.Counter(adapter.client, TYPE, adapter.search_extra())
        total = counter(("", ""))
        assert total is not None and total > 50
        target = total // 6
        cut = windows.cut(counter, total, target, most=32)
        assert cut is not None and len(cut) >= 5
        counts = [counter(window) for window in cut]
        fetched = [
            [
                r["id"]
                for page in adapter.fetch_part(
                    {"kind": "search", "types": [TYPE], "window": list(window)}
                )
                for r in page.resources
            ]
            for window in cut
        ]
    # Contiguous from an open start to an open end: nothing falls between two windows.
    assert cut[0][0] == "" and cut[-1][1] == ""
    assert all(a[1] == b[0] for a, b in zip(cut, cut[1:], strict=False))
    assert sum(counts) == total  # type: ignore[arg-type]
    # Each closed window holds about the target (halving stops once it is at or below it).
    assert all(c is not None and c <= 2 * target for c in counts[:-1]), counts
    ids = [rid for part in fetched for rid in part]
    assert len(ids) == len(set(ids)) == total
    assert set(ids) == {rec.id for rec in env.server.state.store.candidates(TYPE)}
    assert [len(part) for part in fetched] == counts


def test_a_type_at_or_below_the_target_is_not_cut(env_of) -> None:
    env = env_of("nextgen")
    with adapter_for(env.spec) as adapter:
        counter = windows.Counter(adapter.client, TYPE, adapter.search_extra())
        total = counter(("", ""))
        assert total is not None
        assert windows.cut(counter, total, total, most=32) is None
