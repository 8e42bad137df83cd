"""FHIR interactions on the store, shared by the REST handlers and batch/transaction."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from holovitals_sync.sandbox.auth import Grant
from holovitals_sync.sandbox.responses import FhirError
from holovitals_sync.sandbox.search import parse_query
from holovitals_sync.sandbox.state import Sandbox
from holovitals_sync.sandbox.store import Record, VersionConflict

SUPPORTED_TYPES = (
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "DiagnosticReport",
    "Group",
    "QuestionnaireResponse",
)


def check_write(sb: Sandbox, rtype: str, op: str) -> None:
    """Vendor modes refuse writes the vendor does not take over FHIR (405)."""
    if not sb.profile.allows_write(rtype, op):
        raise FhirError(
            405,
            f"{sb.profile.display_name} does not support {op} of {rtype} over FHIR",
            "not-supported",
        )


def check_access(grant: Grant, rtype: str, perm: str) -> None:
    if rtype not in SUPPORTED_TYPES:
        raise FhirError(404, f"resource type '{rtype[:40]}' is not supported", "not-supported")
    if not grant.allows(rtype, perm):
        raise FhirError(403, f"token scopes do not allow '{perm}' on {rtype}", "forbidden")


def validate(res: Any, rtype: str, rid: str | None = None) -> dict[str, Any]:
    """Structural checks a real server would make; 400 for URL mismatch, 422 for content."""
    if not isinstance(res, dict):
        raise FhirError(400, "body must be a JSON object", "structure")
    if res.get("resourceType") != rtype:
        raise FhirError(400, f"resourceType must be {rtype}", "invalid")
    if rid is not None and res.get("id") != rid:
        raise FhirError(400, "resource id must match the URL id", "invalid")
    for ref_field in ("subject", "patient"):
        ref = res.get(ref_field)
        if ref is not None and not (
            isinstance(ref, dict) and isinstance(ref.get("reference"), str)
        ):
            raise FhirError(422, f"{rtype}.{ref_field} must be a Reference", "structure")
    if rtype == "Observation" and not isinstance(res.get("code"), dict):
        raise FhirError(422, "Observation.code is required", "required")
    if not isinstance(res.get("meta", {}), dict):
        raise FhirError(422, "meta must be an object", "structure")
    return res


def read(sb: Sandbox, rtype: str, rid: str) -> Record:
    rec = sb.store.get(rtype, rid)
    if rec is None:
        raise FhirError(404, f"{rtype}/{rid[:64]} not found")
    if rec.deleted:
        raise FhirError(410, f"{rtype}/{rid[:64]} was deleted")
    return rec


def vread(sb: Sandbox, rtype: str, rid: str, vid: str) -> Record:
    rec = sb.store.vread(rtype, rid, int(vid)) if vid.isdecimal() else None
    if rec is None:
        raise FhirError(404, f"{rtype}/{rid[:64]} version {vid[:16]} not found")
    if rec.deleted:
        raise FhirError(410, f"{rtype}/{rid[:64]} version {vid[:16]} is a deletion")
    return rec


def _conditional_matches(sb: Sandbox, rtype: str, criteria: str) -> list[Record]:
    pairs = parse_qsl(criteria.split("?", 1)[-1], keep_blank_values=True)
    if not pairs:
        raise FhirError(400, "If-None-Exist must hold search criteria")
    q = parse_query(pairs, sb.default_page_size, sb.max_page_size)
    return [r for r in sb.store.candidates(rtype, q.patient) if q.matches(r)]


def create(
    sb: Sandbox, rtype: str, res: Any, if_none_exist: str | None, rid: str | None = None
) -> tuple[Record, bool]:
    """Returns (record, created); with If-None-Exist an existing match is returned."""
    check_write(sb, rtype, "create")
    res = validate(res, rtype)
    with sb.store.lock:
        if if_none_exist:
            found = _conditional_matches(sb, rtype, if_none_exist)
            if len(found) > 1:
                raise FhirError(
                    412, "If-None-Exist criteria match more than one resource", "duplicate"
                )
            if found:
                return found[0], False
        res = {k: v for k, v in res.items() if k != "id"}  # the server assigns ids
        return sb.store.create(res, rid), True


def update(
    sb: Sandbox, rtype: str, rid: str, res: Any, if_match: int | None
) -> tuple[Record, bool]:
    check_write(sb, rtype, "update")
    res = validate(res, rtype, rid)
    if not sb.profile.supports_versioning:
        if_match = None
    try:
        return sb.store.update(res, if_match)
    except VersionConflict as exc:
        raise FhirError(
            sb.profile.stale_version_status,
            f"{rtype}/{rid[:64]} is at version {exc.current}, not {if_match}",
            "conflict",
        ) from None


def delete(sb: Sandbox, rtype: str, rid: str, if_match: int | None = None) -> None:
    """Deleting a deleted resource succeeds again (FHIR delete is idempotent); unknown: 404;
    an `If-Match` on an older version than the live one: the vendor's stale status."""
    check_write(sb, rtype, "delete")
    if not sb.profile.supports_versioning:
        if_match = None
    try:
        done = sb.store.delete(rtype, rid, if_match)
    except VersionConflict as exc:
        raise FhirError(
            sb.profile.stale_version_status,
            f"{rtype}/{rid[:64]} is at version {exc.current}, not {if_match}",
            "conflict",
        ) from None
    if done is None and sb.store.get(rtype, rid) is None:
        raise FhirError(404, f"{rtype}/{rid[:64]} not found")
