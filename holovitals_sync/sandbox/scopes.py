"""SMART scopes, v1 (``system/Observation.read``) and v2 (``system/Observation.rs``).

A scope is reduced to (context, resource type or "*", set of permission letters from
"cruds"); v1 .read = rs, .write = cud, .* = cruds. Granular v2 suffixes (``?category=``)
are accepted and treated as covering the whole type, which is lenient but safe for a sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass

_V1 = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset("cruds")}


@dataclass(frozen=True)
class Scope:
    context: str
    rtype: str
    perms: frozenset[str]
    text: str

    def covers(self, other: Scope) -> bool:
        return (
            self.context == other.context
            and self.rtype in ("*", other.rtype)
            and other.perms <= self.perms
        )

    def allows(self, rtype: str, perm: str) -> bool:
        return self.rtype in ("*", rtype) and perm in self.perms


def parse_scope(text: str) -> Scope | None:
    """None for anything that is not a resource scope (openid, launch, ...)."""
    context, sep, rest = text.partition("/")
    if not sep or context not in ("system", "user", "patient") or "." not in rest:
        return None
    rtype, _, action = rest.partition(".")
    action = action.split("?", 1)[0]
    if action in _V1:
        perms = _V1[action]
    elif action and set(action) <= set("cruds"):
        perms = frozenset(action)
    else:
        return None
    return Scope(context, rtype, perms, text)


def parse_scopes(text: str) -> list[Scope]:
    return [s for s in (parse_scope(p) for p in text.split()) if s is not None]


def grant(requested: list[Scope], allowed: list[Scope]) -> list[Scope]:
    """requested ∩ allowed: each requested scope an allowed one covers, plus allowed scopes
    a requested wildcard covers (asking system/*.read of a client allowed only
    system/Observation.read yields system/Observation.read)."""
    out: list[Scope] = []
    for req in requested:
        if any(a.covers(req) for a in allowed):
            out.append(req)
        else:
            out.extend(a for a in allowed if req.covers(a))
    return list({s.text: s for s in out}.values())  # de-duplicated, order kept
