"""Fetch plans: which tasks (search, per-patient, export) a sync runs, from the profile.

A plan is a list of `Task`s derived only from (profile, types, cursor), so the same call
with the same arguments rebuilds the same plan and a checkpoint `{"task": k, "state": ...}`
stays valid across a worker restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from holovitals_sync.adapters.profile import VendorProfile

TaskKind = Literal["search", "patients", "export", "history"]


@dataclass(frozen=True)
class Task:
    """One unit of a fetch.

    Attributes:
        kind: "search" (one type, paged), "patients" (each patient x types), "export",
            "history" (one type's `_history` since the cursor: its deletes).
        types: Resource types covered.
        since: Type -> lower bound (`_lastUpdated` for searches, `_since` for export).
        patient_ids: Fixed patients (None: enumerate them).
        files: Of an export, only these output files (by index among the manifest's files
            of the task's types; None: all of them). A part of a split full sync.
        window: Of a search, only `_lastUpdated` in [lo, hi) ("" is open): one part of a
            large type cut in time (`adapters.windows`).
    """

    kind: TaskKind
    types: tuple[str, ...]
    since: tuple[tuple[str, str], ...] = ()
    patient_ids: tuple[str, ...] | None = None
    files: tuple[int, ...] | None = None
    window: tuple[str, str] | None = None

    def since_of(self, rtype: str) -> str | None:
        """The lower bound of a type, if any."""
        return dict(self.since).get(rtype)


def per_patient(profile: VendorProfile, rtype: str) -> bool:
    """True when a search of this type must name one patient (or, for Patient, its id)."""
    return bool(profile.required_search_params.get(rtype))


def search_tasks(
    profile: VendorProfile, types: list[str], since: dict[str, str] | None = None
) -> list[Task]:
    """Paged search per type where allowed; one per-patient task for the rest."""
    since = since or {}
    free = [t for t in types if not per_patient(profile, t)]
    bound = [t for t in types if per_patient(profile, t)]
    tasks = [Task("search", (t,), _since(since, [t])) for t in free]
    if bound:
        tasks.append(Task("patients", tuple(bound), _since(since, bound)))
    return tasks


def full_tasks(profile: VendorProfile, types: list[str]) -> list[Task]:
    """A full sync: `$export` where offered and meant for it, paged search otherwise."""
    if not types:
        return []
    if profile.export_levels and profile.export_for_full_sync:
        return [Task("export", tuple(types))]
    return search_tasks(profile, types)


def incremental_tasks(
    profile: VendorProfile, types: list[str], cursor: dict[str, str]
) -> list[Task]:
    """An incremental sync from `cursor` (type -> instant).

    Types never synced get a full fetch; `_lastUpdated` where the vendor supports it; the
    documented fallback elsewhere: Bulk `_since` (eClinicalWorks) or a per-patient
    re-query whose unchanged records the caller drops by content hash.
    """
    fresh = [t for t in types if t not in cursor]
    known = [t for t in types if t in cursor]
    by_date = [t for t in known if profile.supports_last_updated(t)]
    rest = [t for t in known if not profile.supports_last_updated(t)]
    tasks = full_tasks(profile, fresh)
    tasks += search_tasks(profile, by_date, {t: cursor[t] for t in by_date})
    # Deletes never show in a search: where the type's history lists them, read it too.
    tasks += [Task("history", (t,), ((t, cursor[t]),)) for t in known if t in profile.history_types]
    if rest and profile.incremental_fallback == "bulk_since" and profile.export_levels:
        oldest = min(cursor[t] for t in rest)
        tasks.append(Task("export", tuple(rest), tuple((t, oldest) for t in rest)))
    elif rest:
        tasks += search_tasks(profile, rest)
    return tasks


def incremental_method(profile: VendorProfile, rtype: str) -> str:
    """How an incremental sync reads a type: "_lastUpdated", "bulk_since", "patient_requery"."""
    if profile.supports_last_updated(rtype):
        return "_lastUpdated"
    if profile.incremental_fallback == "bulk_since" and profile.export_levels:
        return "bulk_since"
    return "patient_requery"


def _since(since: dict[str, str], types: list[str]) -> tuple[tuple[str, str], ...]:
    return tuple((t, since[t]) for t in types if t in since)
