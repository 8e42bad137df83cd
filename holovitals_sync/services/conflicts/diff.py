"""Three-way, element-by-element merge of FHIR bodies (pure functions, no I/O).

`three_way(base, local, remote)` walks the three JSON trees together. A change on one side
only is taken; the same element changed identically on both sides is taken once; the same
element changed differently on both sides is a conflict at its element path. Root `meta`
(versionId, lastUpdated) never takes part in the comparison.

Element paths read like FHIRPath: `name[0].given[1]`, `dosageInstruction[0].timing`.
Arrays whose elements fill a slot are matched by that slot, not by their value (`IDENTITY`:
`telecom` by system+use, `identifier` by system, `name` and `address` by use, `coding` by
system). So a reordered array is no change, and the same slot changed differently on both
sides is a conflict at that element: both sides replacing a patient's home phone with
different numbers conflict, instead of merging into two numbers. Only slots added on one
side, or added on both sides with the same value, merge. Such an element is named by its
index in the base, or, when both sides added it, `[+k]` with k its rank among the added
slots (symmetric, and no value appears in a path). Elements without a slot (no `use`, say),
or two elements in one slot, make the array match by position.

Values are compared with Python `==` (so JSON `1` and `true` compare equal); FHIR never
puts both in one element, and the equality short-circuit is what keeps this fast.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class _Missing:
    """An element absent on one side (distinct from JSON null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

IGNORED_ROOT_KEYS = frozenset({"meta"})
# Array element name -> the fields naming the slot one of its elements fills (FHIR R4:
# ContactPoint.system/use, Identifier.system, HumanName.use, Address.use, Coding.system).
IDENTITY: dict[str, tuple[str, ...]] = {
    "coding": ("system",),
    "identifier": ("system",),
    "telecom": ("system", "use"),
    "name": ("use",),
    "address": ("use",),
}


class Side(enum.Enum):
    """A per-element choice of one side's value (not a str: a manual value may be "local")."""

    LOCAL = "local"
    REMOTE = "remote"


@dataclass(frozen=True, slots=True)
class FieldConflict:
    """One element changed differently on both sides; absent values are `MISSING`."""

    path: str
    base: Any
    local: Any
    remote: Any


@dataclass(slots=True)
class MergeResult:
    """The merged body and what could not be merged.

    Attributes:
        merged: Base plus every non-conflicting change of both sides; at a conflicting
            element the local value stays (or the chosen one, when choices were given).
        conflicts: The elements changed differently on both sides, in document order.
        chosen: path -> value used for each element settled by `choices`.
    """

    merged: dict[str, Any]
    conflicts: list[FieldConflict] = field(default_factory=list)
    chosen: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.conflicts

    @property
    def paths(self) -> list[str]:
        return [c.path for c in self.conflicts]


@dataclass(slots=True)
class _Ctx:
    conflicts: list[FieldConflict]
    choices: Mapping[str, Any]
    chosen: dict[str, Any]

    def conflict(self, path: str, b: Any, l: Any, r: Any) -> Any:  # noqa: E741
        if path in self.choices:
            pick = self.choices[path]
            value = l if pick is Side.LOCAL else r if pick is Side.REMOTE else pick
            self.chosen[path] = value
            return value
        self.conflicts.append(FieldConflict(path, b, l, r))
        return l  # the local copy stays as it is until a person or a policy decides


def three_way(
    base: Mapping[str, Any] | None,
    local: Mapping[str, Any],
    remote: Mapping[str, Any],
    *,
    choices: Mapping[str, Any] | None = None,
) -> MergeResult:
    """Merge two edits of one FHIR resource against their common base.

    Args:
        base: The last version both sides agreed on (None: nothing agreed yet).
        local: The HoloVitals copy.
        remote: The EHR's copy.
        choices: Settle conflicting elements: path -> `Side.LOCAL`, `Side.REMOTE` or a
            literal value (`MISSING` removes the element).

    Returns:
        The merge; `meta` of the result is the remote's (the version it builds on).
    """
    ctx = _Ctx([], choices or {}, {})
    base = base or {}
    merged: dict[str, Any] = {}
    for key in _keys(local, remote):
        if key in IGNORED_ROOT_KEYS:
            continue
        l, r = local.get(key, MISSING), remote.get(key, MISSING)  # noqa: E741
        # Inlined equality short-circuit: most elements of most pairs are untouched.
        value = l if (l is r or l == r) else _merge(base.get(key, MISSING), l, r, key, key, ctx)
        if value is not MISSING:
            merged[key] = value
    meta = remote.get("meta", local.get("meta"))
    if meta is not None:
        merged["meta"] = meta
    return MergeResult(merged, ctx.conflicts, ctx.chosen)


def _keys(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[str]:
    """Keys of `first` in order, then those only in `second` (base-only keys: both removed)."""
    return list(first) + [k for k in second if k not in first]


def _merge(b: Any, l: Any, r: Any, path: str, name: str, ctx: _Ctx) -> Any:  # noqa: E741
    if l is r or l == r:
        return l  # unchanged, or the same change on both sides
    if b is l or b == l:
        return r  # only the remote changed
    if b is r or b == r:
        return l  # only the local copy changed
    if type(l) is dict and type(r) is dict:
        return _merge_dict(b if type(b) is dict else {}, l, r, path, ctx)
    if type(l) is list and type(r) is list:
        return _merge_list(b, l, r, path, name, ctx)
    return ctx.conflict(path, b, l, r)


def _merge_dict(b: dict, l: dict, r: dict, path: str, ctx: _Ctx) -> dict:  # noqa: E741
    out: dict[str, Any] = {}
    for key in _keys(l, r):
        value = _merge(
            b.get(key, MISSING), l.get(key, MISSING), r.get(key, MISSING), f"{path}.{key}", key, ctx
        )
        if value is not MISSING:
            out[key] = value
    return out


def _merge_list(b: Any, l: list, r: list, path: str, name: str, ctx: _Ctx) -> Any:  # noqa: E741
    base = b if type(b) is list else []
    fields = IDENTITY.get(name)
    if fields is not None:
        indexes = [_identity_index(items, fields) for items in (base, l, r)]
        if None not in indexes:
            return _merge_keyed(base, l, r, indexes, path, name, ctx)
    return _merge_positional(b, base, l, r, path, name, ctx)


_SCALARS = (str, int, type(None))


def _identity_index(items: list, fields: tuple[str, ...]) -> dict[tuple, int] | None:
    """slot -> position, or None when an element names no slot or shares one."""
    index: dict[tuple, int] = {}
    for position, item in enumerate(items):
        if type(item) is not dict:
            return None
        key = tuple(item.get(name) for name in fields)
        if any(type(part) not in _SCALARS for part in key):
            return None  # a slot is named by strings (a malformed element is not one)
        if all(part is None for part in key) or key in index:
            return None
        index[key] = position
    return index


def _merge_keyed(
    base: list,
    l: list,  # noqa: E741 (local, beside r for remote and b for base)
    r: list,
    indexes: list[dict[tuple, int]],
    path: str,
    name: str,
    ctx: _Ctx,
) -> list:
    bi, li, ri = indexes
    # Slots both sides added: named by rank, so swapping the sides names them alike.
    added = sorted((k for k in li if k in ri and k not in bi), key=_sort_key)
    rank = {k: n for n, k in enumerate(added)}
    out = []
    for key in list(li) + [k for k in ri if k not in li]:
        label = f"{path}[{bi[key]}]" if key in bi else f"{path}[+{rank.get(key, 'r')}]"
        value = _merge(
            base[bi[key]] if key in bi else MISSING,
            l[li[key]] if key in li else MISSING,
            r[ri[key]] if key in ri else MISSING,
            label,
            name,
            ctx,
        )
        if value is not MISSING:
            out.append(value)
    return out


def _sort_key(key: tuple) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in key)


def _merge_positional(
    b: Any,
    base: list,
    l: list,  # noqa: E741
    r: list,
    path: str,
    name: str,
    ctx: _Ctx,
) -> Any:
    mark = len(ctx.conflicts)
    out, gap, hole = [], False, False
    for i in range(max(len(base), len(l), len(r))):
        before = len(ctx.conflicts)
        value = _merge(
            base[i] if i < len(base) else MISSING,
            l[i] if i < len(l) else MISSING,
            r[i] if i < len(r) else MISSING,
            f"{path}[{i}]",
            name,
            ctx,
        )
        conflicted = len(ctx.conflicts) > before
        if value is MISSING and not conflicted:
            gap = True
        elif gap:
            hole = True  # a removal before a kept element: positions no longer line up
        if value is not MISSING:
            out.append(value)
    if hole:
        del ctx.conflicts[mark:]
        return ctx.conflict(path, b, l, r)
    return out
