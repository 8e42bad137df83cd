"""Which tasks of a fetch are likely the longest: the order parallel streams start in.

Offset paging reads one type's pages one after another, so the largest type is a run's
critical path. Started late, it pages alone at the end while every other stream sits
idle. Measured on SEKMET (22,246 resources, 52 types in the capability statement, four
streams): Observation, 13,000 resources, started 39th and paged alone for the last 1.0 s of a
2.1 s sync. Started first, its pages overlap all the others (longest job first).

A server's counts would give the exact order, but `_summary=count` costs a query per type
and many EHRs do not answer it. The order of clinical volume is much the same everywhere:
labs and vitals far ahead, then reports, notes and visits. A fixed ranking serves, and an
unlisted type keeps its place in the plan after the listed ones.
"""

from __future__ import annotations

from holovitals_sync.adapters.plan import Task

# Largest first, as EHR data runs (labs and vitals in Observation dwarf everything else).
LARGEST_FIRST: tuple[str, ...] = (
    "Observation",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Procedure",
    "MedicationAdministration",
    "MedicationRequest",
    "ExplanationOfBenefit",
    "Claim",
    "Immunization",
    "Condition",
    "MedicationStatement",
    "ServiceRequest",
    "CarePlan",
    "Provenance",
    "AllergyIntolerance",
    "Patient",
)
_RANK = {rtype: rank for rank, rtype in enumerate(LARGEST_FIRST)}


def rank(task: Task) -> int:
    """Lower for tasks expected to take longer. A per-patient task (one search per patient
    and type) outlasts any single type's search; deletes (`_history`) are small."""
    if task.kind == "patients":
        return -1
    best = min((_RANK.get(t, len(LARGEST_FIRST)) for t in task.types), default=len(_RANK))
    return best + (len(_RANK) + 1 if task.kind == "history" else 0)


def start_order(tasks: list[Task], indices: list[int]) -> list[int]:
    """`indices` (of `tasks`) with the longest expected first; ties keep the plan's order.

    Only the order streams start in changes, never a task's index: a checkpoint names its
    streams by index, so a resumed run finds each where it was.
    """
    return sorted(indices, key=lambda k: (rank(tasks[k]), k))
