"""Records read from the sandbox EHR over HTTP: transformed, validated, errors persisted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from holovitals_sync.db import session_scope
from holovitals_sync.models import RecordError, TransformKind, ValidationMode
from holovitals_sync.services.transformation import DataTransformationService, RuleIn
from holovitals_sync.services.validation import (
    CustomValidator,
    Layer,
    persist_errors,
    validate_batch,
)

TYPES = [
    "Patient",
    "Observation",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "Encounter",
    "DiagnosticReport",
]


def _patient_everything(fhir: httpx.Client, pid: str) -> list[dict[str, Any]]:
    out = []
    for rtype in TYPES:
        key = "_id" if rtype == "Patient" else "patient"
        resp = fhir.get(f"/{rtype}", params={key: pid, "_count": 200})
        assert resp.status_code == 200, resp.status_code
        out += [e["resource"] for e in resp.json().get("entry", [])]
    return out


@pytest.fixture
def records(fhir: httpx.Client) -> list[dict[str, Any]]:
    found = _patient_everything(fhir, "pt-00002") + _patient_everything(fhir, "pt-00003")
    assert {r["resourceType"] for r in found} == set(TYPES)
    return found


def _break(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], set[str]]:
    """Break one record per layer; returns the batch and the broken ids."""
    batch = [dict(r) for r in records]
    obs = [r for r in batch if r["resourceType"] == "Observation"]
    del obs[0]["status"]  # US Core minimum
    obs[1]["subject"] = {"reference": "Patient/not-synced"}  # reference integrity
    obs[2]["valueQuantity"] = {"value": "PHI-LIKE-TEXT"}  # structure
    obs[3]["valueQuantity"] = dict(obs[3]["valueQuantity"], value=-5)  # custom range
    return batch, {o["id"] for o in obs[:4]}


CUSTOM = CustomValidator(
    [
        {
            "check": "range",
            "name": "non-negative quantity",
            "resource_type": "Observation",
            "path": "valueQuantity.value",
            "min": 0,
        }
    ]
)


@pytest.mark.parametrize("mode", [ValidationMode.STRICT, ValidationMode.LENIENT])
def test_sandbox_batch_through_rules_and_validation(
    mode: ValidationMode, records: list[dict[str, Any]], engine: sa.Engine, connection_id: int
) -> None:
    batch, broken = _break(records)
    with session_scope(engine) as session:
        svc = DataTransformationService(session)
        svc.create(
            RuleIn(
                kind=TransformKind.UNIT_CONVERSION,
                connection_id=connection_id,
                resource_type="Observation",
                params={"to_unit": "mmol/L"},
            )
        )
        svc.create(
            RuleIn(
                kind=TransformKind.DATETIME_NORMALISE,
                connection_id=connection_id,
                params={"paths": ["effectiveDateTime", "meta.lastUpdated"]},
            )
        )
        results = svc.apply_batch(batch, connection_id=connection_id)
        transformed = [r.resource for r in results]
        outcome = validate_batch(transformed, mode=mode, known_patients=set(), custom=CUSTOM)
        written = persist_errors(session, errors=outcome.errors, connection_id=connection_id)
    glucose = [
        r for r in transformed if r.get("code", {}).get("coding", [{}])[0].get("code") == "2345-7"
    ]
    assert glucose and all(g["valueQuantity"]["code"] == "mmol/L" for g in glucose)
    assert all(r["meta"]["lastUpdated"].endswith("+00:00") for r in transformed)
    invalid = {r["id"] for r in outcome.flagged + outcome.dropped}
    assert invalid == broken
    assert len(outcome.valid) == len(batch) - 4
    if mode is ValidationMode.STRICT:
        assert outcome.flagged == [] and len(outcome.to_store) == len(batch) - 4
    else:
        assert outcome.dropped == [] and len(outcome.to_store) == len(batch)
    with Session(engine) as session:
        rows = session.exec(select(RecordError)).all()
    assert len(rows) == written >= 4
    assert {r.remote_id for r in rows} == broken
    assert {r.message.split("]")[0][1:] for r in rows} == {layer.value for layer in Layer}
    assert not any("PHI-LIKE" in (r.message + (r.path or "")) for r in rows)
    assert all(r.connection_id == connection_id and r.job_id is None for r in rows)
