"""Code translation from a concept map table: one system's code to another's.

The original coding is kept; the translated coding is appended next to it, so a
CodeableConcept carries both (as FHIR intends for translations). Translating twice adds
nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Target:
    code: str
    display: str | None = None


class ConceptMap:
    """A lookup from (source system, code) to a coding in the target system."""

    __slots__ = ("source_system", "target_system", "_table")

    def __init__(self, *, source_system: str, target_system: str, table: dict[str, Target]) -> None:
        self.source_system = source_system
        self.target_system = target_system
        self._table = table

    def translate_concept(self, concept: Any) -> bool:
        """Append translations to one CodeableConcept; returns whether it changed."""
        if not isinstance(concept, dict):
            return False
        codings = concept.get("coding")
        if not isinstance(codings, list):
            return False
        present = {
            c.get("code")
            for c in codings
            if isinstance(c, dict) and c.get("system") == self.target_system
        }
        added = []
        for coding in codings:
            target = self._lookup(coding)
            if target is not None and target.code not in present:
                added.append(self._coding(target))
                present.add(target.code)
        codings.extend(added)
        return bool(added)

    def _lookup(self, coding: Any) -> Target | None:
        if not isinstance(coding, dict) or coding.get("system") != self.source_system:
            return None
        code = coding.get("code")
        return self._table.get(code) if isinstance(code, str) else None

    def _coding(self, target: Target) -> dict[str, Any]:
        coding: dict[str, Any] = {"system": self.target_system, "code": target.code}
        if target.display:
            coding["display"] = target.display
        return coding
