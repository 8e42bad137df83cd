"""Properties of the three-way merge for arbitrary JSON (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from holovitals_sync.models import ResolutionStrategy
from holovitals_sync.services.conflicts import MISSING, resolved_body, three_way

from .strategies import RICH_KEYS, bodies, edit, triples

settings.register_profile("conflicts", max_examples=120, deadline=None)
settings.load_profile("conflicts")


def flatten(value: Any, path: str = "", out: dict | None = None) -> dict[str, Any]:
    """Leaf path -> leaf value (empty containers have no leaves)."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{path}.{key}", out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            flatten(item, f"{path}[{index}]", out)
    else:
        out[path] = value
    return out


@given(triples())
def test_clean_merge_has_every_one_sided_change_and_nothing_else(triple):
    base, local, remote = triple
    result = three_way(base, local, remote)
    if not result.clean:
        return
    b, lo, r, m = (flatten(x) for x in (base, local, remote, result.merged))
    for path in set(b) | set(lo) | set(r) | set(m):
        bv, lv, rv, mv = (x.get(path, MISSING) for x in (b, lo, r, m))
        if lv == bv:
            assert mv == rv, path  # remote-only change (or none): taken
        elif rv == bv:
            assert mv == lv, path  # local-only change: taken
        else:
            assert lv == rv and mv == lv, path  # both sides alike: taken once


@given(triples())
def test_clean_merges_happen(triple):
    """Sanity of the generator: one-sided edits never conflict."""
    base, local, _ = triple
    assert three_way(base, local, base).merged == local
    assert three_way(base, base, local).merged == local


@given(triples(RICH_KEYS))
def test_detection_is_symmetric(triple):
    base, local, remote = triple
    forward = {c.path: c for c in three_way(base, local, remote).conflicts}
    backward = {c.path: c for c in three_way(base, remote, local).conflicts}
    assert forward.keys() == backward.keys()
    for path, c in forward.items():
        assert (c.local, c.remote) == (backward[path].remote, backward[path].local)


@given(bodies(RICH_KEYS), st.data())
def test_identical_changes_are_not_conflicts(base, data):
    changed = data.draw(edit(base, RICH_KEYS))
    result = three_way(base, changed, changed)
    assert result.clean
    assert result.merged == changed


@given(triples(RICH_KEYS))
def test_meta_is_never_a_conflict(triple):
    base, local, remote = triple
    local, remote = {**local, "meta": {"versionId": "1"}}, {**remote, "meta": {"versionId": "2"}}
    result = three_way(base, local, remote)
    assert all(not c.path.startswith("meta") for c in result.conflicts)
    assert result.merged["meta"] == {"versionId": "2"}


@given(triples(RICH_KEYS))
def test_use_local_and_use_remote_yield_exactly_that_side(triple):
    base, local, remote = triple
    assert resolved_body(ResolutionStrategy.USE_LOCAL, base, local, remote)[0] == local
    assert resolved_body(ResolutionStrategy.USE_REMOTE, base, local, remote)[0] == remote
    assert resolved_body(ResolutionStrategy.IGNORE, base, local, remote)[0] == local
