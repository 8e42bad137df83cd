"""A small FHIR element path helper: get, set and delete with arrays.

Syntax: dot-separated element names, each optionally followed by `[N]` (one array item)
or `[*]` (every item), e.g. `code.coding[0].code`, `valueQuantity.value`, `name[*].given`.
A name without an index on an array in the middle of a path walks every item (as FHIRPath
does), so `name.given` reaches the `given` of every name. Paths are parsed once into
`ElementPath` objects; resolving one never raises on arbitrary JSON.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ALL = -1  # `[*]`
_STEP = re.compile(r"^([A-Za-z_][A-Za-z0-9_\-]*)(?:\[(\d+|\*)\])?$")
_MISSING = object()


class PathSyntaxError(ValueError):
    """The path is not in the supported syntax."""


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    index: int | None  # None: no index; ALL: every item; else one item


def _parse_step(text: str) -> Step:
    match = _STEP.match(text)
    if match is None:
        raise PathSyntaxError(f"invalid path step {text!r}")
    name, index = match.groups()
    if index is None:
        return Step(name, None)
    return Step(name, ALL if index == "*" else int(index))


class ElementPath:
    """A parsed element path (parse once, resolve many times)."""

    __slots__ = ("text", "steps", "_names")

    def __init__(self, text: str) -> None:
        if not text or not isinstance(text, str):
            raise PathSyntaxError("empty path")
        self.text = text
        self.steps = tuple(_parse_step(part) for part in text.split("."))
        # Paths without indexes take a fast walk through plain objects (the common case).
        simple = all(step.index is None for step in self.steps)
        self._names = tuple(step.name for step in self.steps) if simple else None

    def __repr__(self) -> str:
        return f"ElementPath({self.text!r})"

    def locations(self, resource: Any, *, create: bool = False) -> list[tuple[Any, Any]]:
        """(container, key) pairs the path names; with `create`, missing parents are made.

        The key is a dict key or a list index. A location may hold no value yet.
        """
        if self._names is not None and not create:
            parent = _walk(resource, self._names[:-1])
            if isinstance(parent, dict):
                return [(parent, self._names[-1])]
            if parent is not _MISSING and not isinstance(parent, list):
                return []
        nodes = [resource]
        last = len(self.steps) - 1
        for pos, step in enumerate(self.steps):
            final = pos == last
            found: list[Any] = []
            for node in nodes:
                if not isinstance(node, dict):
                    continue
                if final and step.index is None:
                    found.append((node, step.name))
                    continue
                found.extend(_descend(node, step, final=final, create=create))
            nodes = found
        return nodes

    def get(self, resource: Any) -> list[Any]:
        """Every value the path names (missing ones left out)."""
        if self._names is not None:
            node = _walk(resource, self._names)
            if node is not _MISSING:
                return [] if node is None else [node]
        out = []
        for container, key in self.locations(resource):
            value = _read(container, key)
            if value is not _MISSING and value is not None:
                out.append(value)
        return out

    def first(self, resource: Any, default: Any = None) -> Any:
        values = self.get(resource)
        return values[0] if values else default

    def set(self, resource: Any, value: Any) -> int:
        """Set every named location (creating parents); returns how many were written."""
        count = 0
        for container, key in self.locations(resource, create=True):
            if isinstance(container, dict) or _in_list(container, key):
                container[key] = value
                count += 1
        return count

    def delete(self, resource: Any) -> int:
        """Remove every named value; returns how many were removed."""
        count = 0
        # Reverse order so list indexes stay valid while items are removed.
        for container, key in reversed(self.locations(resource)):
            if (isinstance(container, dict) and key in container) or _in_list(container, key):
                del container[key]
                count += 1
        return count


def _walk(node: Any, names: tuple[str, ...]) -> Any:
    """Follow names through objects; None if absent, _MISSING if an array is on the way."""
    for name in names:
        if isinstance(node, dict):
            node = node.get(name)
        elif node is None:
            return None
        else:
            return _MISSING if isinstance(node, list) else None
    return node


def _in_list(container: Any, key: Any) -> bool:
    return isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container)


def _read(container: Any, key: Any) -> Any:
    if isinstance(container, dict):
        return container.get(key, _MISSING)
    if isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container):
        return container[key]
    return _MISSING


def _descend(node: dict, step: Step, *, final: bool, create: bool) -> list[Any]:
    """Children of `node` along one step: nodes, or (container, key) pairs when final."""
    value = node.get(step.name, _MISSING)
    if value is _MISSING or value is None:
        if not create or step.index == ALL:
            return []
        value = [] if step.index is not None else {}
        node[step.name] = value
    if step.index is None:  # intermediate step without index: walk arrays
        return list(value) if isinstance(value, list) else [value]
    if not isinstance(value, list):
        return []
    if step.index == ALL:
        return [(value, i) for i in range(len(value))] if final else list(value)
    if step.index >= len(value):
        if not (create and step.index == len(value)):
            return []
        value.append(None if final else {})
    return [(value, step.index)] if final else [value[step.index]]
