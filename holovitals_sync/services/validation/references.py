"""Reference integrity: a subject/patient reference names a patient the connection knows
or one present in the same batch."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from .issues import Layer, ValidationIssue, identity

KnownPatients = Callable[[str], bool] | Collection[str]
PATIENT_ELEMENTS = ("subject", "patient")


def deferred(_patient_id: str) -> bool:
    """`known` for a sync's batches: whether the patient is held is decided when the run
    ends (`services.validation.pending`), never by the order types and pages arrive in, so
    every well-formed Patient reference passes here."""
    return True


def batch_patients(resources: Iterable[Any]) -> set[str]:
    """Ids of the Patient resources in a batch."""
    return {
        r["id"]
        for r in resources
        if isinstance(r, dict)
        and r.get("resourceType") == "Patient"
        and isinstance(r.get("id"), str)
    }


def patient_id(reference: Any) -> str | None:
    """The id in a `Patient/<id>` reference (absolute URLs and `_history` tolerated)."""
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if not isinstance(ref, str):
        return None
    if ref.startswith("Patient/") and ref.count("/") == 1:
        return ref[8:] or None  # the common relative form, without the general parse
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return parts[-1]
    return None


def _knows(known: KnownPatients | None, pid: str) -> bool:
    if known is None:
        return False
    return known(pid) if callable(known) else pid in known


def check_references(
    resource: Any, *, known: KnownPatients | None, in_batch: Collection[str]
) -> list[ValidationIssue]:
    """Issues for subject/patient references that do not resolve to a known patient."""
    if not isinstance(resource, dict) or resource.get("resourceType") == "Patient":
        return []
    issues = []
    for element in PATIENT_ELEMENTS:
        value = resource.get(element)
        if value is None:
            continue
        ref = value.get("reference") if isinstance(value, dict) else None
        if isinstance(ref, str) and not ref.startswith(("Patient/", "http")) and "/" in ref:
            continue  # subject may be a Group, Device or Location: not ours to check
        pid = patient_id(value)
        if pid is None:
            message = "reference is not a Patient reference"
        elif pid in in_batch or _knows(known, pid):
            continue
        else:
            message = "referenced patient is unknown to this connection and not in the batch"
        rtype, rid = identity(resource)  # only for an issue: most resources have none
        issues.append(ValidationIssue(rtype, rid, f"{element}.reference", message, Layer.REFERENCE))
    return issues
