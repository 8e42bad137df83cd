"""Deterministic synthetic patients: the same seed always gives byte-identical resources.

Each patient gets its own random.Random derived from (seed, index), so patients can be
generated one at a time (memory-light) and in any order with the same result.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from holovitals_sync.sandbox import terminology as t

Resource = dict[str, Any]
# Generated history lies in 2023-2025; anything the running sandbox changes is later.
_EPOCH = datetime(2023, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 3 * 365 * 86400


def fhir_instant(dt: datetime) -> str:
    """UTC instant with millisecond precision, e.g. 2026-11-26T03:30:00.123Z."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _when(rng: random.Random, after: datetime | None = None) -> datetime:
    start = after or _EPOCH
    left = max(1, int((_EPOCH + timedelta(seconds=_SPAN_SECONDS) - start).total_seconds()))
    return start + timedelta(seconds=rng.randrange(left), milliseconds=rng.randrange(1000))


def _meta(when: datetime) -> dict[str, str]:
    return {"versionId": "1", "lastUpdated": fhir_instant(when)}


def _cc(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": t.OBS_CATEGORY, "code": code}]}]


def _value(rng: random.Random, low: float, high: float, decimals: int) -> float | int:
    v = round(rng.uniform(low, high), decimals)
    return int(v) if decimals == 0 else v


def observation(
    rng: random.Random,
    oid: str,
    pid: str,
    spec: tuple,
    category: str,
    when: datetime,
    encounter: str | None = None,
) -> Resource:
    code, display, unit, low, high, decimals = spec
    res: Resource = {
        "resourceType": "Observation",
        "id": oid,
        "meta": _meta(when),
        "status": "final",
        "category": _category(category),
        "code": _cc(t.LOINC, code, display),
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": fhir_instant(when),
        "valueQuantity": {
            "value": _value(rng, low, high, decimals),
            "unit": unit,
            "system": t.UCUM,
            "code": unit,
        },
    }
    if encounter:
        res["encounter"] = {"reference": f"Encounter/{encounter}"}
    return res


def encounter(rng: random.Random, eid: str, pid: str, when: datetime) -> Resource:
    end = when + timedelta(minutes=rng.randrange(15, 90))
    return {
        "resourceType": "Encounter",
        "id": eid,
        "meta": _meta(end),
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "AMB",
            "display": "ambulatory",
        },
        "type": [_cc(t.SNOMED, "185349003", "Encounter for check up")],
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": fhir_instant(when), "end": fhir_instant(end)},
    }


def _patient(rng: random.Random, pid: str, index: int, when: datetime) -> Resource:
    gender = rng.choice(["male", "female"])
    city, state, zipcode = rng.choice(t.CITIES)
    birth = datetime(1935, 1, 1) + timedelta(days=rng.randrange(365 * 70))
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": _meta(when),
        "active": True,
        "identifier": [
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "system": t.MRN_SYSTEM,
                "value": f"MRN{index:07d}",
            }
        ],
        "name": [
            {
                "use": "official",
                "family": rng.choice(t.FAMILY_NAMES),
                "given": [rng.choice(t.GIVEN_NAMES[gender])],
            }
        ],
        "gender": gender,
        "birthDate": birth.strftime("%Y-%m-%d"),
        "address": [
            {
                "use": "home",
                "line": [f"{rng.randrange(1, 9999)} {rng.choice(t.STREETS)}"],
                "city": city,
                "state": state,
                "postalCode": zipcode,
                "country": "US",
            }
        ],
    }


def condition(rng: random.Random, cid: str, pid: str, when: datetime) -> Resource:
    snomed, icd, display = rng.choice(t.CONDITIONS)
    status = rng.choice(["active", "active", "active", "resolved", "inactive"])
    return {
        "resourceType": "Condition",
        "id": cid,
        "meta": _meta(when),
        "clinicalStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", status, status
        ),
        "verificationStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"
        ),
        "category": [
            _cc(
                "http://terminology.hl7.org/CodeSystem/condition-category",
                "problem-list-item",
                "Problem List Item",
            )
        ],
        "code": {
            "coding": [
                {"system": t.SNOMED, "code": snomed, "display": display},
                {"system": t.ICD10, "code": icd, "display": display},
            ],
            "text": display,
        },
        "subject": {"reference": f"Patient/{pid}"},
        "onsetDateTime": fhir_instant(when),
    }


def dosage(value: float | int, unit: str, per_day: int) -> list[dict[str, Any]]:
    return [
        {
            "text": f"{value} {unit} {per_day} times daily",
            "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [
                {"doseQuantity": {"value": value, "unit": unit, "system": t.UCUM, "code": unit}}
            ],
        }
    ]


def medication_request(rng: random.Random, mid: str, pid: str, when: datetime) -> Resource:
    code, display, dose, unit, per_day = rng.choice(t.MEDICATIONS)
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "meta": _meta(when),
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": _cc(t.RXNORM, code, display),
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": fhir_instant(when),
        "dosageInstruction": dosage(dose, unit, per_day),
    }


def _allergy(rng: random.Random, aid: str, pid: str, when: datetime) -> Resource:
    system, code, display = rng.choice(t.ALLERGENS)
    r_code, r_display = rng.choice(t.REACTIONS)
    return {
        "resourceType": "AllergyIntolerance",
        "id": aid,
        "meta": _meta(when),
        "clinicalStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"
        ),
        "verificationStatus": _cc(
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            "confirmed",
            "Confirmed",
        ),
        "code": _cc(system, code, display),
        "patient": {"reference": f"Patient/{pid}"},
        "recordedDate": fhir_instant(when),
        "reaction": [
            {
                "substance": _cc(system, code, display),
                "manifestation": [_cc(t.SNOMED, r_code, r_display)],
                "severity": rng.choice(["mild", "moderate", "severe"]),
            }
        ],
    }


def _immunization(rng: random.Random, iid: str, pid: str, when: datetime) -> Resource:
    code, display = rng.choice(t.VACCINES)
    return {
        "resourceType": "Immunization",
        "id": iid,
        "meta": _meta(when),
        "status": "completed",
        "vaccineCode": _cc(t.CVX, code, display),
        "patient": {"reference": f"Patient/{pid}"},
        "occurrenceDateTime": fhir_instant(when),
        "primarySource": True,
    }


def _report(rid: str, pid: str, when: datetime, results: list[str]) -> Resource:
    code, display = t.LAB_PANEL
    return {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "meta": _meta(when),
        "status": "final",
        "category": [_cc("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")],
        "code": _cc(t.LOINC, code, display),
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": fhir_instant(when),
        "issued": fhir_instant(when),
        "result": [{"reference": f"Observation/{oid}"} for oid in results],
    }


def patient_id(index: int) -> str:
    return f"pt-{index:05d}"


def generate_patient(seed: int, index: int) -> list[Resource]:
    """All resources of one patient (30-59 of them), Patient first."""
    rng = random.Random(seed * 1_000_003 + index)
    pid = patient_id(index)
    base = f"{index:05d}"
    out: list[Resource] = [_patient(rng, pid, index, _when(rng))]
    counter = iter(range(1, 1000))

    def rid(prefix: str) -> str:
        return f"{prefix}-{base}-{next(counter):03d}"

    for _ in range(rng.randint(3, 6)):
        enc = encounter(rng, rid("enc"), pid, _when(rng))
        start = datetime.fromisoformat(enc["period"]["start"].replace("Z", "+00:00"))
        out.append(enc)
        out.extend(
            observation(rng, rid("obs"), pid, spec, "vital-signs", start, enc["id"])
            for spec in t.VITALS
        )
    for _ in range(rng.randint(2, 3)):
        when = _when(rng)
        labs = [observation(rng, rid("obs"), pid, spec, "laboratory", when) for spec in t.LABS]
        out.extend(labs)
        out.append(_report(rid("dr"), pid, when, [o["id"] for o in labs]))
    out.extend(condition(rng, rid("cond"), pid, _when(rng)) for _ in range(rng.randint(2, 4)))
    out.extend(
        medication_request(rng, rid("med"), pid, _when(rng)) for _ in range(rng.randint(2, 4))
    )
    out.extend(_allergy(rng, rid("alg"), pid, _when(rng)) for _ in range(rng.randint(0, 2)))
    out.extend(_immunization(rng, rid("imm"), pid, _when(rng)) for _ in range(rng.randint(1, 3)))
    return out


def generate(seed: int, patients: int) -> Iterator[Resource]:
    for index in range(1, patients + 1):
        yield from generate_patient(seed, index)


def all_patients_group(patients: int) -> Resource:
    """The Group bulk export clients use (like a health system's "all patients" group)."""
    return {
        "resourceType": "Group",
        "id": "all-patients",
        "meta": {"versionId": "1", "lastUpdated": fhir_instant(_EPOCH)},
        "type": "person",
        "actual": True,
        "name": "All sandbox patients",
        "quantity": patients,
        "member": [
            {"entity": {"reference": f"Patient/{patient_id(i)}"}} for i in range(1, patients + 1)
        ],
    }
