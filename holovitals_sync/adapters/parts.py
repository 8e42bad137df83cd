"""A full sync cut into parts that several workers can run: per group of output files of a
Bulk Data export whose server cuts a type into several files, per block of patients where
every search names one (the types searched freely then make one more part together), and
per `_lastUpdated` window of each large type where searches are free (`adapters.windows`;
a part marked `last`, a type's open tail, runs after all the others).

A part is plain JSON (stored on the child job's row), and the same part always rebuilds the
same fetch plan, so a child resumes from its own checkpoint like any job. `split` decides
whether a full sync is worth cutting: below `min_resources` (the export manifest's counts, or
the patients times a typical chart) one job is faster than the round trips of many.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from holovitals_sync.adapters import windows
from holovitals_sync.adapters.plan import Task, full_tasks, per_patient
from holovitals_sync.fhir.bulk import BulkExporter

if TYPE_CHECKING:
    from holovitals_sync.adapters.base import EHRAdapter

log = logging.getLogger(__name__)

Part = dict[str, Any]
# The size of a full sync is guessed from its patients: a typical chart's resources.
PER_PATIENT_GUESS = 40
MAX_PARTS = 256
# A type is cut in time into windows of about its fair share of the run: the resources
# counted over this many windows per worker, never below a tenth of the split threshold.
WINDOWS_PER_WORKER = 2


@dataclass
class Split:
    """The parts of a full sync (two or more: run as children), or the resume state the
    unsplit run starts from (an export already started here is not started again)."""

    parts: list[Part] = field(default_factory=list)
    resume: dict[str, Any] | None = None


def plan_split(
    adapter: EHRAdapter,
    types: list[str],
    *,
    min_resources: int,
    patient_block: int,
    workers: int = 1,
) -> Split:
    """How to run a full sync of `types`: in parts, or as one job."""
    tasks = full_tasks(adapter.profile, types)
    if len(tasks) == 1 and tasks[0].kind == "export":
        return _export_split(adapter, tasks[0], min_resources)
    # A search per type is not cut by type: the largest type's pages come one after another
    # either way (offset paging), and one job already pages several types at once. Measured
    # (benchmarks/sync.py --only split): parts per type were 0.84-0.9x one job. Large types
    # are cut in time instead (`_window_split`).
    bound = [t for t in tasks if t.kind == "patients"]
    if not bound:
        return _window_split(
            adapter, [t for task in tasks for t in task.types], min_resources, workers
        )
    ids = adapter.patient_ids()
    if len(ids) * PER_PATIENT_GUESS < min_resources:
        return Split()
    parts: list[Part] = [
        {
            "kind": "patients",
            "types": list(task.types),
            "patients": ids[start : start + patient_block],
        }
        for task in bound
        for start in range(0, len(ids), patient_block)
    ]
    free = [t for task in tasks if task.kind != "patients" for t in task.types]
    if free:  # together, so their streams run side by side as in one job
        parts.append({"kind": "search", "types": free})
    if len(parts) < 2 or len(parts) > MAX_PARTS:
        return Split()
    return Split(parts)


def _window_split(adapter: EHRAdapter, types: list[str], min_resources: int, workers: int) -> Split:
    """Each type larger than a fair share cut into `_lastUpdated` windows (one part each,
    its open tail held back until the others end); the smaller types in one part.

    Planning asks the server only for counts: when that fails for any reason, the sync
    runs whole, as it did before windows existed.
    """
    try:
        return _plan_windows(adapter, types, min_resources, workers)
    except Exception as exc:  # noqa: BLE001 - a plan is an optimisation, never a failure
        log.warning("full sync not cut in windows: %s", type(exc).__name__)
        return Split()


def _plan_windows(adapter: EHRAdapter, types: list[str], min_resources: int, workers: int) -> Split:
    usable = [t for t in types if adapter.profile.supports_last_updated(t)]
    counters = {t: windows.Counter(adapter.client, t, adapter.search_extra()) for t in usable}
    counts = {t: counter(("", "")) for t, counter in counters.items()}
    known = sum(c for c in counts.values() if c is not None)
    if known < min_resources:
        return Split()
    target = max(min_resources // 10, known // (WINDOWS_PER_WORKER * max(1, workers)), 1)
    parts: list[Part] = []
    whole: list[str] = []
    large = [t for t in types if (counts.get(t) or 0) > 2 * target]
    most = max(2, (MAX_PARTS - 1) // max(1, len(large)))  # all of them within MAX_PARTS
    for rtype in types:
        count = counts.get(rtype)
        cut = (
            windows.cut(counters[rtype], count, target, most)
            if rtype in large and count is not None
            else None
        )
        if cut is None:
            whole.append(rtype)
            continue
        parts += [
            {
                "kind": "search",
                "types": [rtype],
                "window": list(window),
                **({"last": True} if not window[1] else {}),
            }
            for window in cut
        ]
    if whole:  # together, so their streams run side by side as in one job
        parts.append({"kind": "search", "types": whole})
    if len(parts) < 2 or len(parts) > MAX_PARTS:
        return Split()
    log.info("full sync cut in %d parts (%d resources counted)", len(parts), known)
    return Split(parts)


def _export_split(adapter: EHRAdapter, task: Task, min_resources: int) -> Split:
    """Start the export and wait for its manifest here; its files become the parts."""
    exporter = BulkExporter(adapter.client, poll_interval=1.0)
    level, group = adapter.export_target()
    job = exporter.kick_off(
        level=level,  # type: ignore[arg-type]
        group_id=group,
        types=task.types,
        since=None,
    )
    manifest = exporter.wait(job)
    saved = job.to_dict()
    files = [f for f in manifest.output if f.type in task.types]
    counts = [f.count for f in files]
    total = None if None in counts else sum(counts)  # type: ignore[arg-type]
    # One file per type: the largest type's file bounds any split (measured 1.0x); files
    # of a size the server chose (a type in several) share out evenly.
    one_per_type = len(files) == len({f.type for f in files})
    if one_per_type or (total is not None and total < min_resources):
        return Split(resume={"task": 0, "state": {"job": saved}})
    groups = _groups(len(files), MAX_PARTS)
    return Split(
        [
            {"kind": "export", "types": list(task.types), "job": saved, "files": group}
            for group in groups
        ]
    )


def _groups(count: int, most: int) -> list[list[int]]:
    """File indices in at most `most` groups of consecutive files."""
    size = max(1, -(-count // most))
    return [list(range(start, min(start + size, count))) for start in range(0, count, size)]


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
        window = tuple(part["window"]) if part.get("window") else None
        return [Task("search", (t,), window=window) for t in types], None  # type: ignore[arg-type]
    raise ValueError(f"unknown part {kind!r}")
