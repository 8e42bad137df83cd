"""Custom validation rules through ValidationRuleService on SQLite and PostgreSQL: save-time
validation, enable/disable, reorder, delete, the check run, and an audit row per change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from holovitals_sync import migrations
from holovitals_sync.db import create_db_engine, session_scope
from holovitals_sync.models import AuditLog, EHRConnection, ErrorSeverity, Vendor
from holovitals_sync.services.audit import Actor, verify_chain
from holovitals_sync.services.orchestration.pipeline import custom_rules
from holovitals_sync.services.validation import Layer
from holovitals_sync.services.validation_rules import (
    ConnectionNotFound,
    InvalidValidationRule,
    ValidationRuleNotFound,
    ValidationRuleService,
    form_rule,
)

ADMIN = Actor.system("admin@test")
HEART_RATE = {
    "check": "range",
    "name": "heart rate",
    "resource_type": "Observation",
    "path": "valueQuantity.value",
    "min": 20,
    "max": 250,
}
MRN = {
    "check": "pattern",
    "name": "mrn",
    "resource_type": "Patient",
    "path": "identifier[*].value",
    "pattern": r"MRN\d{7}",
}
FINAL = {
    "check": "fhirpath",
    "name": "final only",
    "resource_type": "Observation",
    "expression": "status = 'final'",
    "severity": "warning",
}
OBS = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "valueQuantity": {"value": 999},
}


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    migrations.upgrade(database_url)
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cid(engine: sa.Engine) -> int:
    with session_scope(engine) as session:
        row = EHRConnection(
            name="General", vendor=Vendor.GENERIC, base_url="https://ehr.example/fhir"
        )
        session.add(row)
        session.flush()
        return row.id


def _stored(engine: sa.Engine, cid: int) -> list[dict]:
    with Session(engine) as session:
        return session.get(EHRConnection, cid).validation_rules


def _audit(engine: sa.Engine) -> list[tuple[str, str | None, dict]]:
    with Session(engine) as session:
        rows = session.exec(select(AuditLog).order_by(AuditLog.seq)).all()
        return [
            (r.action, r.target_id, r.details)
            for r in rows
            if r.action.startswith("validation_rule.")
        ]


def test_add_list_and_audit(engine: sa.Engine, cid: int) -> None:
    with session_scope(engine) as session:
        service = ValidationRuleService(session, actor=ADMIN)
        first = service.add(cid, HEART_RATE)
        second = service.add(cid, MRN)
    assert first.id and second.id and first.id != second.id
    stored = _stored(engine, cid)
    assert [r["name"] for r in stored] == ["heart rate", "mrn"]
    assert stored[0] == {
        "check": "range",
        "id": first.id,
        "name": "heart rate",
        "resource_type": "Observation",
        "severity": "error",
        "enabled": True,
        "path": "valueQuantity.value",
        "min": 20.0,
        "max": 250.0,
    }
    entries = _audit(engine)
    assert [(a, t) for a, t, _ in entries] == [("validation_rule.create", str(cid))] * 2
    assert entries[0][2]["rule_id"] == first.id and entries[0][2]["check"] == "range"
    with Session(engine) as session:
        assert verify_chain(session).ok


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        (MRN | {"pattern": "MRN(\\d"}, "pattern"),
        (FINAL | {"expression": "status = ("}, "expression"),
        (FINAL | {"expression": "nosuchfunction()"}, "expression"),
        (HEART_RATE | {"path": "valueQuantity..value"}, "path"),
        (HEART_RATE | {"min": 300}, "max"),
        (HEART_RATE | {"resource_type": "observation"}, "resource_type"),
        (HEART_RATE | {"name": "  "}, "name"),
        (HEART_RATE | {"colour": "red"}, "colour"),
        ({"check": "regex", "name": "x"}, "check"),
    ],
)
def test_invalid_rule_is_refused_naming_the_field(
    engine: sa.Engine, cid: int, rule: dict, field: str
) -> None:
    with session_scope(engine) as session:
        ValidationRuleService(session, actor=ADMIN).add(cid, FINAL)
    with pytest.raises(InvalidValidationRule) as refused, session_scope(engine) as session:
        ValidationRuleService(session, actor=ADMIN).add(cid, rule)
    assert field in [f for f, _ in refused.value.errors], refused.value.errors
    assert [r["name"] for r in _stored(engine, cid)] == ["final only"]  # nothing saved
    assert len(_audit(engine)) == 1


def test_duplicate_name_unknown_rule_and_connection(engine: sa.Engine, cid: int) -> None:
    with session_scope(engine) as session:
        service = ValidationRuleService(session, actor=ADMIN)
        rule = service.add(cid, HEART_RATE)
        with pytest.raises(InvalidValidationRule, match="name"):
            service.add(cid, MRN | {"name": "Heart Rate"})
        with pytest.raises(ValidationRuleNotFound):
            service.update(cid, "nope", {"enabled": False})
        with pytest.raises(ConnectionNotFound):
            service.add(cid + 1000, MRN)
        with pytest.raises(InvalidValidationRule, match="id"):
            service.update(cid, rule.id, {"id": "other"})


def test_disabled_rule_is_kept_but_not_run(engine: sa.Engine, cid: int) -> None:
    with session_scope(engine) as session:
        service = ValidationRuleService(session, actor=ADMIN)
        rule = service.add(cid, HEART_RATE)
        assert [i.message for i in service.check(cid, OBS)] == [
            "heart rate: value outside the allowed range"
        ]
        service.set_enabled(cid, rule.id, False)
        assert service.check(cid, OBS) == []
    stored = _stored(engine, cid)
    assert stored[0]["enabled"] is False and stored[0]["max"] == 250.0
    # The sync loop compiles what is stored: the disabled rule finds nothing either.
    with Session(engine) as session:
        validator = custom_rules(session.get(EHRConnection, cid))
        assert validator is not None and validator.check(OBS) == []
    assert [a for a, _, _ in _audit(engine)] == [
        "validation_rule.create",
        "validation_rule.disable",
    ]
    with session_scope(engine) as session:
        ValidationRuleService(session, actor=ADMIN).set_enabled(cid, rule.id, True)
    with Session(engine) as session:
        issues = custom_rules(session.get(EHRConnection, cid)).check(OBS)
    assert [(i.layer, i.severity, i.path) for i in issues] == [
        (Layer.CUSTOM, ErrorSeverity.ERROR, "valueQuantity.value")
    ]


def test_update_replace_reorder_delete(engine: sa.Engine, cid: int) -> None:
    with session_scope(engine) as session:
        service = ValidationRuleService(session, actor=ADMIN)
        a, b, c = (service.add(cid, r) for r in (HEART_RATE, MRN, FINAL))
        edited = service.update(cid, a.id, {"max": 300, "severity": "warning"})
        assert (edited.max, edited.min, edited.severity) == (300, 20, ErrorSeverity.WARNING)
        # A new check keeps the common fields only: the new check's fields come with it.
        changed = service.update(cid, b.id, {"check": "fhirpath", "expression": "active"})
        assert (changed.check, changed.name, changed.resource_type) == (
            "fhirpath",
            "mrn",
            "Patient",
        )
        with pytest.raises(InvalidValidationRule, match="expression"):
            service.update(cid, c.id, {"check": "range", "path": "x", "expression": "true"})
        replaced = service.replace(
            cid,
            c.id,
            {
                "check": "pattern",
                "name": "status code",
                "path": "status",
                "pattern": "final|amended",
            },
        )
        assert replaced.id == c.id and replaced.enabled is True
        service.reorder(cid, [c.id, a.id, b.id])
        with pytest.raises(InvalidValidationRule, match="rule_ids"):
            service.reorder(cid, [c.id, a.id])
        with pytest.raises(InvalidValidationRule, match="twice"):
            service.reorder(cid, [c.id, c.id, a.id])
        service.delete(cid, a.id)
    assert [(r["id"], r["check"]) for r in _stored(engine, cid)] == [
        (c.id, "pattern"),
        (b.id, "fhirpath"),
    ]
    assert [a for a, _, _ in _audit(engine)] == [
        "validation_rule.create",
        "validation_rule.create",
        "validation_rule.create",
        "validation_rule.update",
        "validation_rule.update",
        "validation_rule.update",
        "validation_rule.reorder",
        "validation_rule.delete",
    ]


def test_rules_stored_without_ids_get_stable_ones(engine: sa.Engine, cid: int) -> None:
    """Rules written straight into the column (before ids) are still addressable."""
    with session_scope(engine) as session:
        session.get(EHRConnection, cid).validation_rules = [HEART_RATE, MRN]
    with session_scope(engine) as session:
        service = ValidationRuleService(session, actor=ADMIN)
        assert [r.id for r in service.list_rules(cid)] == ["rule-1", "rule-2"]
        service.set_enabled(cid, "rule-2", False)
    assert [(r["id"], r["enabled"]) for r in _stored(engine, cid)] == [
        ("rule-1", True),
        ("rule-2", False),
    ]


def test_form_strings_become_a_rule_or_field_messages() -> None:
    base = {
        "check": "range",
        "name": "hr",
        "resource_type": "Observation",
        "path": "valueQuantity.value",
        "min": "20",
        "max": "",
        "severity": "error",
    }
    data, errors = form_rule(base)
    assert errors == {} and data["min"] == 20.0 and data["max"] is None
    assert form_rule(base | {"min": "twenty"})[1] == {"min": "a number, or blank for no bound"}
    assert (
        "expression"
        in form_rule({"check": "fhirpath", "name": "x", "expression": "name.where("})[1]
    )
    assert (
        "pattern" in form_rule({"check": "pattern", "name": "x", "path": "id", "pattern": "[a-"})[1]
    )
