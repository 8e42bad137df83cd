"""A "clinic day": realistic edits and additions so incremental syncs have work to find."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from holovitals_sync.sandbox import data
from holovitals_sync.sandbox import terminology as t
from holovitals_sync.sandbox.store import Record, Store

_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def _edit_observation(rng: random.Random, res: dict[str, Any]) -> None:
    q = res.get("valueQuantity")
    if isinstance(q, dict) and isinstance(q.get("value"), int | float):
        q["value"] = round(q["value"] * rng.uniform(0.9, 1.1), 1)
    res["status"] = "amended"


def _edit_condition(rng: random.Random, res: dict[str, Any]) -> None:
    current = (res.get("clinicalStatus") or {}).get("coding", [{}])[0].get("code")
    status = rng.choice([s for s in ("active", "resolved", "inactive") if s != current])
    res["clinicalStatus"] = {"coding": [{"system": _CLINICAL, "code": status}], "text": status}


def _edit_medication(rng: random.Random, res: dict[str, Any]) -> None:
    dose = res["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    per_day = res["dosageInstruction"][0]["timing"]["repeat"]["frequency"]
    value = dose["value"] * rng.choice([0.5, 2])
    value = int(value) if float(value).is_integer() else value
    res["dosageInstruction"] = data.dosage(value, dose["unit"], per_day)


_EDITS = {
    "Observation": _edit_observation,
    "Condition": _edit_condition,
    "MedicationRequest": _edit_medication,
}


def _create(store: Store, rng: random.Random, patients: list[Record]) -> Record:
    pid = rng.choice(patients).id
    now = datetime.now(UTC)
    if rng.random() < 0.3:
        return store.create(data.encounter(rng, "x", pid, now), store.next_id("enc"))
    spec = rng.choice(t.VITALS)
    res = data.observation(rng, "x", pid, spec, "vital-signs", now)
    return store.create(res, store.next_id("obs"))


def advance_clinic_day(store: Store, n_changes: int, rng: random.Random) -> dict[str, Any]:
    """Make n_changes writes (about 60% edits, 40% new resources); report ids only."""
    updated: dict[str, set[str]] = {}
    created: dict[str, list[str]] = {}
    with store.lock:
        since = store.watermark()
        patients = store.candidates("Patient")
        pools = {rtype: store.candidates(rtype) for rtype in _EDITS}
        for _ in range(n_changes):
            rtype = rng.choice(list(_EDITS))
            if rng.random() < 0.6 and pools[rtype]:
                rec = rng.choice(pools[rtype])
                res = (store.get(rtype, rec.id) or rec).resource()
                _EDITS[rtype](rng, res)
                store.update(res)
                updated.setdefault(rtype, set()).add(rec.id)
            elif patients:
                rec = _create(store, rng, patients)
                created.setdefault(rec.rtype, []).append(rec.id)
        until = store.watermark()
    changed: dict[str, list[str]] = {}
    for source in (updated, created):
        for rtype, ids in source.items():
            changed.setdefault(rtype, []).extend(sorted(ids))
    return {
        "since": since,
        "until": until,
        "updated": {k: sorted(v) for k, v in updated.items()},
        "created": created,
        "changed": changed,
    }
