"""How much a conflict matters, from a table of rules (data, not code paths).

A rule names a resource type, an element (indices dropped; `value[x]` for any choice type)
and, optionally, a condition on the resource. A conflict at the element, inside it, or at
an ancestor that contains it matches. A conflict's severity is the highest over its paths;
anything no rule names is low.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...models import Severity

RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2}


@dataclass(frozen=True, slots=True)
class Rule:
    resource_type: str
    element: str  # dotted, no indices; `value[x]` matches valueQuantity, valueString, ...
    severity: Severity
    when: str | None = None  # a name in CONDITIONS


RULES: tuple[Rule, ...] = (
    # Clinically significant: a wrong value here can harm a patient.
    Rule("MedicationRequest", "dosageInstruction.doseAndRate", Severity.HIGH),
    Rule("MedicationRequest", "dosageInstruction.timing", Severity.HIGH),
    Rule("MedicationRequest", "dosageInstruction.maxDosePerPeriod", Severity.HIGH),
    Rule("AllergyIntolerance", "code", Severity.HIGH),
    Rule("AllergyIntolerance", "reaction", Severity.HIGH),
    Rule("Condition", "clinicalStatus", Severity.HIGH),
    Rule("Observation", "value[x]", Severity.HIGH, when="laboratory"),
    Rule("Observation", "component.value[x]", Severity.HIGH, when="laboratory"),
    # Identity and demographics: a wrong value here files data under the wrong person.
    Rule("Patient", "name", Severity.MEDIUM),
    Rule("Patient", "birthDate", Severity.MEDIUM),
    Rule("Patient", "gender", Severity.MEDIUM),
    Rule("Patient", "identifier", Severity.MEDIUM),
    Rule("Patient", "address", Severity.MEDIUM),
    Rule("Patient", "telecom", Severity.MEDIUM),
)

_INDEX = re.compile(r"\[[^\]]*\]")
_CHOICE = re.compile(r"^value[A-Z]")


def _is_lab(body: Mapping[str, Any]) -> bool:
    for category in body.get("category") or ():
        for coding in (category or {}).get("coding") or ():
            if (coding or {}).get("code") == "laboratory":
                return True
    return False


CONDITIONS = {"laboratory": _is_lab}


def element_of(path: str) -> str:
    """`dosageInstruction[0].timing.repeat` -> `dosageInstruction.timing.repeat`."""
    return _INDEX.sub("", path)


def _segments(element: str) -> list[str]:
    return ["value[x]" if _CHOICE.match(s) else s for s in element.split(".")]


def _matches(rule: Rule, segments: list[str]) -> bool:
    wanted = rule.element.split(".")
    n = min(len(wanted), len(segments))  # inside the element, or an ancestor of it
    return wanted[:n] == segments[:n]


def severity_of(
    resource_type: str,
    paths: Iterable[str],
    body: Mapping[str, Any] | None = None,
    rules: Iterable[Rule] = RULES,
) -> Severity:
    """The highest severity any rule gives to any of `paths`.

    Args:
        resource_type: The resource's type.
        paths: Conflicting element paths.
        body: The resource (local or remote copy) for rules with a condition.
        rules: The table; defaults to `RULES`.
    """
    applicable = [r for r in rules if r.resource_type == resource_type]
    best = Severity.LOW
    for path in paths:
        segments = _segments(element_of(path))
        for rule in applicable:
            if RANK[rule.severity] <= RANK[best] or not _matches(rule, segments):
                continue
            if rule.when is None or CONDITIONS[rule.when](body or {}):
                best = rule.severity
    return best
