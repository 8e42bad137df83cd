"""A full sync cut into parts that several workers can run: per resource type for searches,
per block of patients where every search names one, per group of output files for Bulk Data.

A part is plain JSON (stored on the child job's row), and the same part always rebuilds the
same fetch plan, so a child resumes from its own checkpoint like any job. `split` decides
whether a full sync is worth cutting: below `min_resources` (the export manifest's counts, or
the patients times a typical chart) one job is faster than the round trips of many.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from holovitals_sync.adapters.plan import Task, full_tasks, per_patient
from holovitals_sync.fhir.bulk import BulkExporter
from holovitals_sync.fhir.errors import FhirError

if TYPE_CHECKING:
    from holovitals_sync.adapters.base import EHRAdapter

log = logging.getLogger(__name__)

Part = dict[str, Any]
# The size of a full sync is guessed from its patients: a typical chart's resources.
PER_PATIENT_GUESS = 40
MAX_PARTS = 256


@dataclass
class Split:
    """The parts of a full sync (two or more: run as children), or the resume state the
    unsplit run starts from (an export already started here is not started again)."""

    parts: list[Part] = field(default_factory=list)
    resume: dict[str, Any] | None = None


def plan_split(adapter: EHRAdapter, types: list[str], *, min_resources: int,
               patient_block: int) -> Split:
    """How to run a full sync of `types`: in parts, or as one job."""
    tasks = full_tasks(adapter.profile, types)
    if len(tasks) == 1 and tasks[0].kind == "export":
        return _export_split(adapter, tasks[0], min_resources)
    if len(tasks) < 2 and not any(t.kind == "patients" for t in tasks):
        return Split()
    parts: list[Part] = []
    patients: int | None = None
    for task in tasks:
        if task.kind == "patients":
            ids = adapter.patient_ids()
            patients = len(ids)
            parts += [{"kind": "patients", "types": list(task.types),
                       "patients": ids[start:start + patient_block]}
                      for start in range(0, len(ids), patient_block)]
        else:
            parts.append({"kind": "search", "types": list(task.types)})
    if patients is None:  # one request tells the size: the patients, times a typical chart
        patients = _count(adapter, "Patient" if "Patient" in types else types[0])
    if patients is None or len(parts) < 2 or len(parts) > MAX_PARTS \
            or patients * PER_PATIENT_GUESS < min_resources:
        return Split()  # small, or cannot tell: one job, as before
    return Split(parts)


def _export_split(adapter: EHRAdapter, task: Task, min_resources: int) -> Split:
    """Start the export and wait for its manifest here; its files become the parts."""
    exporter = BulkExporter(adapter.client, poll_interval=1.0)
    level, group = adapter.export_target()
    job = exporter.kick_off(level=level, group_id=group,  # type: ignore[arg-type]
                            types=task.types, since=None)
    manifest = exporter.wait(job)
    saved = job.to_dict()
    files = [f for f in manifest.output if f.type in task.types]
    counts = [f.count for f in files]
    total = None if None in counts else sum(counts)  # type: ignore[arg-type]
    if len(files) < 2 or (total is not None and total < min_resources):
        return Split(resume={"task": 0, "state": {"job": saved}})
    groups = _groups(len(files), MAX_PARTS)
    return Split([{"kind": "export", "types": list(task.types), "job": saved,
                   "files": group} for group in groups])


def _groups(count: int, most: int) -> list[list[int]]:
    """File indices in at most `most` groups of consecutive files."""
    size = max(1, -(-count // most))
    return [list(range(start, min(start + size, count))) for start in range(0, count, size)]


def _count(adapter: EHRAdapter, rtype: str) -> int | None:
    """The server's count of a type (`_summary=count`), or None when it does not say."""
    try:
        pages = adapter.client.search_pages(rtype, [*adapter._search_extra(),
                                                    ("_summary", "count")])
        bundle = next(iter(pages))
    except FhirError as exc:
        log.info("%s count not available (%s)", rtype, type(exc).__name__)
        return None
    total = bundle.get("total")
    return total if isinstance(total, int) else None


def part_tasks(adapter: EHRAdapter, part: Part) -> tuple[list[Task], dict[str, Any] | None]:
    """The fetch plan of one part, and where a fresh run of it starts."""
    types = tuple(part["types"])
    kind = part["kind"]
    if kind == "patients":
        return [Task("patients", types, patient_ids=tuple(part["patients"]))], None
    if kind == "export":
        task = Task("export", types, files=tuple(part["files"]))
        return [task], {"task": 0, "state": {"job": part["job"]}}
    if kind == "search" and not any(per_patient(adapter.profile, t) for t in types):
        return [Task("search", (t,)) for t in types], None
    raise ValueError(f"unknown part {kind!r}")
