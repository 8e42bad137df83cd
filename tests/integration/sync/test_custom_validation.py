"""A connection's custom validation rules in a real sync: a worker, the sandbox over HTTP.

An Observation range rule saved through the service fails a known part of the sandbox's
Observations. Strict mode stores everything else and records a `[custom]` error per failing
record; lenient mode stores them all and records the same errors. A disabled rule that would
fail every resource finds nothing.
"""

from __future__ import annotations

import statistics

import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import EHRConnection, RecordError, ValidationMode
from holovitals_sync.sandbox.server import SandboxServer
from holovitals_sync.services.validation_rules import ValidationRuleService

from .conftest import TESTER, local_hashes, sandbox_hashes, start, wait_status


def _values(ehr: SandboxServer) -> dict[str, float]:
    """Observation id -> valueQuantity.value, read from the sandbox's own store."""
    store = ehr.state.store
    with store.lock:
        resources = [rec.resource() for rec in store.candidates("Observation")]
    return {
        r["id"]: r["valueQuantity"]["value"]
        for r in resources
        if isinstance(r.get("valueQuantity", {}).get("value"), int | float)
    }


def _configure(connection_id: int, mode: ValidationMode, limit: float) -> None:
    with session_scope() as session:
        session.get(EHRConnection, connection_id).validation_mode = mode
        service = ValidationRuleService(session, actor=TESTER)
        service.add(
            connection_id,
            {
                "check": "range",
                "name": "value ceiling",
                "resource_type": "Observation",
                "path": "valueQuantity.value",
                "max": limit,
            },
        )
        off = service.add(
            connection_id, {"check": "fhirpath", "name": "never true", "expression": "false"}
        )
        service.set_enabled(connection_id, off.id, False)


def _custom_errors(job_id: int) -> list[RecordError]:
    with session_scope() as session:
        return list(
            session.exec(
                select(RecordError).where(
                    RecordError.job_id == job_id, RecordError.message.startswith("[custom]")
                )
            ).all()
        )


@pytest.mark.parametrize("mode", [ValidationMode.STRICT, ValidationMode.LENIENT])
def test_custom_rule_in_a_sync(connection, ehr, workers, mode):
    values = _values(ehr)
    limit = statistics.median(values.values())
    failing = {oid for oid, value in values.items() if value > limit}
    assert 0 < len(failing) < len(values)
    _configure(connection.id, mode, limit)

    workers.start(1)
    job = wait_status(start(connection.id), "completed", "failed", timeout=120)
    assert job.status.value == "completed", job.last_error

    errors = _custom_errors(job.id)
    assert {(e.resource_type, e.remote_id) for e in errors} == {
        ("Observation", oid) for oid in failing
    }
    assert len(errors) == len(failing)  # one each: the disabled rule added none
    assert {(e.path, e.message, e.severity.value) for e in errors} == {
        ("valueQuantity.value", "[custom] value ceiling: value outside the allowed range", "error")
    }

    expected = sandbox_hashes(ehr)
    if mode is ValidationMode.STRICT:
        expected = {
            key: h
            for key, h in expected.items()
            if key not in {("Observation", oid) for oid in failing}
        }
    assert local_hashes(connection.id) == expected
