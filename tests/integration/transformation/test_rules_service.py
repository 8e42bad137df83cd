"""Rule CRUD through DataTransformationService on SQLite and PostgreSQL, with audit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from holovitals_sync.db import session_scope
from holovitals_sync.models import AuditLog, RuleDirection, TransformationRule
from holovitals_sync.models import TransformKind as K
from holovitals_sync.sandbox.data import generate_patient
from holovitals_sync.services.audit import Actor, verify_chain
from holovitals_sync.services.transformation import (
    DataTransformationService,
    InvalidRule,
    RuleIn,
    RuleNotFound,
    RulePatch,
)

from .conftest import add_connection

ADMIN = Actor.system("admin@test")
OBS = next(r for r in generate_patient(1234, 1) if r["resourceType"] == "Observation")


def _actions(session: Session) -> list[tuple[str, str | None]]:
    rows = session.exec(select(AuditLog).order_by(AuditLog.seq)).all()
    return [(r.action, r.target_id) for r in rows]


def test_create_update_enable_disable_delete_are_audited(
    engine: sa.Engine, connection_id: int
) -> None:
    with session_scope(engine) as session:
        svc = DataTransformationService(session, actor=ADMIN)
        rule = svc.create(
            RuleIn(
                kind=K.DEFAULT_VALUE,
                connection_id=connection_id,
                resource_type="Observation",
                params={"path": "language", "value": "en"},
            )
        )
        rid = str(rule.id)
        svc.update(
            rule.id,
            RulePatch(params={"path": "language", "value": "fr"}, description="French feed"),
        )
        svc.disable(rule.id)
        svc.enable(rule.id)
    with session_scope(engine) as session:
        svc = DataTransformationService(session)
        stored = svc.get(int(rid))
        assert stored.params == {"path": "language", "value": "fr"} and stored.enabled
        assert stored.description == "French feed" and stored.position == 0
        svc.delete(int(rid))
    with Session(engine) as session:
        assert session.get(TransformationRule, int(rid)) is None
        assert _actions(session) == [
            (f"transformation_rule.{verb}", rid)
            for verb in ("create", "update", "disable", "enable", "delete")
        ]
        assert session.exec(select(AuditLog)).first().actor == "admin@test"
        assert verify_chain(session).ok


def test_invalid_params_are_refused_at_save_time_and_nothing_is_stored(
    engine: sa.Engine, connection_id: int
) -> None:
    with session_scope(engine) as session:
        svc = DataTransformationService(session)
        with pytest.raises(InvalidRule, match="FHIRPath"):
            svc.create(
                RuleIn(
                    kind=K.COMPUTED,
                    connection_id=connection_id,
                    params={"expression": "valueQuantity.value *", "target": "x"},
                )
            )
        ok = svc.create(RuleIn(kind=K.REDACT, params={"path": "note"}))
        with pytest.raises(InvalidRule):
            svc.update(ok.id, RulePatch(kind=K.UNIT_CONVERSION, params={"to_unit": "parsec"}))
        with pytest.raises(InvalidRule):
            svc.update(ok.id, RulePatch(kind=K.UNIT_CONVERSION))
        with pytest.raises(LookupError):
            svc.create(RuleIn(kind=K.REDACT, connection_id=9999, params={"path": "note"}))
        with pytest.raises(RuleNotFound):
            svc.disable(12345)
    with Session(engine) as session:
        rows = session.exec(select(TransformationRule)).all()
        assert [(r.kind, r.params) for r in rows] == [
            (K.REDACT, {"path": "note", "mode": "drop", "replacement": "[redacted]"})
        ]


def test_selection_global_star_direction_enabled_and_order(
    engine: sa.Engine, connection_id: int
) -> None:
    with session_scope(engine) as session:
        other = add_connection(session, "Other Clinic")
        svc = DataTransformationService(session)

        def rule(path: str, **kw) -> int:
            return svc.create(
                RuleIn(kind=K.DEFAULT_VALUE, params={"path": path, "value": path}, **kw)
            ).id

        mine = rule("mine", connection_id=connection_id, resource_type="Observation")
        glob = rule("global")  # global, every type, position 0
        rule("theirs", connection_id=other)
        rule("patient_only", connection_id=connection_id, resource_type="Patient")
        rule("outbound", connection_id=connection_id, direction=RuleDirection.OUTBOUND)
        rule("both", connection_id=connection_id, direction=RuleDirection.BOTH)
        off = rule("off", connection_id=connection_id)
        svc.disable(off)
        book = svc.compile_for(connection_id, "Observation", RuleDirection.INBOUND)
        assert [r.id for r in book.rules][:2] == [glob, mine]  # same position: global first
        applied = book.apply(OBS).resource
        assert {"mine", "global", "both"} <= applied.keys()
        assert not {"theirs", "patient_only", "outbound", "off"} & applied.keys()
        out = svc.compile_for(connection_id, "Observation", RuleDirection.OUTBOUND).apply(OBS)
        assert {"outbound", "both"} <= out.resource.keys()
        assert not {"mine", "global"} & out.resource.keys()  # both are inbound rules


def test_reorder_changes_application_order(engine: sa.Engine, connection_id: int) -> None:
    with session_scope(engine) as session:
        svc = DataTransformationService(session, actor=ADMIN)
        first = svc.create(
            RuleIn(
                kind=K.DEFAULT_VALUE,
                connection_id=connection_id,
                params={"path": "language", "value": " EN "},
            )
        ).id
        second = svc.create(
            RuleIn(
                kind=K.STRING_NORMALISE,
                connection_id=connection_id,
                params={"paths": ["language"], "case": "lower"},
            )
        ).id
        assert svc.apply_batch([OBS], connection_id=connection_id)[0].resource["language"] == "en"
        svc.reorder(connection_id=connection_id, rule_ids=[second, first])
        assert svc.apply_batch([OBS], connection_id=connection_id)[0].resource["language"] == " EN "
        with pytest.raises(InvalidRule):
            svc.reorder(connection_id=None, rule_ids=[first])
        with pytest.raises(InvalidRule):
            svc.reorder(connection_id=connection_id, rule_ids=[first, first])
    with Session(engine) as session:
        assert ("transformation_rule.reorder", str(connection_id)) in _actions(session)


def test_dry_run_reports_before_after_and_rule_changes(
    engine: sa.Engine, connection_id: int
) -> None:
    with session_scope(engine) as session:
        svc = DataTransformationService(session)
        conv = svc.create(
            RuleIn(
                kind=K.UNIT_CONVERSION,
                connection_id=connection_id,
                params={"to_unit": "[lb_av]", "from_units": ["kg"]},
            )
        ).id
        svc.create(
            RuleIn(
                kind=K.COMPUTED,
                connection_id=connection_id,
                params={"expression": "status * 2", "target": "x"},
            )
        )
        red = svc.create(RuleIn(kind=K.REDACT, params={"path": "meta"})).id
        weight = next(
            r for r in generate_patient(1234, 1) if r.get("code", {}).get("text") == "Body weight"
        )
        result = svc.dry_run(connection_id, weight)
    assert result.before == weight and result.before["valueQuantity"]["code"] == "kg"
    assert result.after["valueQuantity"]["code"] == "[lb_av]" and "meta" not in result.after
    # The global rule shares position 0 with the connection's first rule and runs first.
    assert [(c["rule_id"], c["kind"], c["paths"]) for c in result.changes] == [
        (red, "redact", ["meta"]),
        (conv, "unit_conversion", ["valueQuantity"]),
    ]
    assert [f["kind"] for f in result.failures] == ["computed"]
    assert weight["valueQuantity"]["code"] == "kg"  # the sample itself is untouched


def test_list_rules_scopes(engine: sa.Engine, connection_id: int) -> None:
    with session_scope(engine) as session:
        svc = DataTransformationService(session)
        svc.create(RuleIn(kind=K.REDACT, params={"path": "note"}))
        svc.create(RuleIn(kind=K.REDACT, connection_id=connection_id, params={"path": "text"}))
        assert len(svc.list_rules(connection_id=connection_id)) == 2
        assert len(svc.list_rules(connection_id=connection_id, include_global=False)) == 1
        assert len(svc.list_rules()) == 1  # only the global rules
