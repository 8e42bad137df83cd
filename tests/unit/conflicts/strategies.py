"""Hypothesis strategies: JSON resource bodies and edits of them."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

LEAVES = st.none() | st.booleans() | st.integers(-3, 3) | st.text("xyz", max_size=2)
PLAIN_KEYS = st.sampled_from(["a", "b", "c", "d"])
# Keys that switch on identity matching of arrays (coding/identifier/telecom elements).
RICH_KEYS = st.sampled_from(["a", "b", "system", "value", "code", "coding", "identifier"])


_VALUES: dict[int, st.SearchStrategy[Any]] = {}


def json_values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """JSON values (built once per key set: building a recursive strategy is not cheap)."""
    if id(keys) not in _VALUES:
        _VALUES[id(keys)] = st.recursive(
            LEAVES,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
            max_leaves=8,
        )
    return _VALUES[id(keys)]


def bodies(keys: st.SearchStrategy[str] = PLAIN_KEYS) -> st.SearchStrategy[dict]:
    return st.dictionaries(keys, json_values(keys), max_size=4)


@st.composite
def edit(draw: st.DrawFn, value: Any, keys: st.SearchStrategy[str] = PLAIN_KEYS) -> Any:
    """A random edit of `value`: keep, replace, delete/add keys, descend, grow/shrink lists."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            action = draw(st.sampled_from(["keep", "keep", "edit", "drop", "replace"]))
            if action == "keep":
                out[key] = item
            elif action == "edit":
                out[key] = draw(edit(item, keys))
            elif action == "replace":
                out[key] = draw(json_values(keys))
        if draw(st.booleans()):
            out[draw(keys)] = draw(json_values(keys))
        return out
    if isinstance(value, list):
        out = [draw(edit(item, keys)) if draw(st.booleans()) else item for item in value]
        if out and draw(st.booleans()):
            out = out[: draw(st.integers(0, len(out)))]
        if draw(st.booleans()):
            out.append(draw(json_values(keys)))
        return out
    return draw(st.sampled_from([value, value])) if draw(st.booleans()) else draw(LEAVES)


@st.composite
def triples(draw: st.DrawFn, keys: st.SearchStrategy[str] = PLAIN_KEYS) -> tuple:
    """(base, local, remote): both sides edited independently from one base."""
    base = draw(bodies(keys))
    return base, draw(edit(base, keys)), draw(edit(base, keys))
