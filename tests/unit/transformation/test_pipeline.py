"""Compiled pipelines: order, resource types, failures recorded per record."""

from __future__ import annotations

from holovitals_sync.models import TransformKind as K
from holovitals_sync.services.transformation import RuleSpec, compile_rules

from .conftest import book, sample


def test_rules_apply_in_order_and_report_what_changed() -> None:
    rules = book(
        (K.DEFAULT_VALUE, {"path": "language", "value": " EN "}),
        (K.STRING_NORMALISE, {"paths": ["language"], "case": "lower"}),
        (K.REDACT, {"path": "nothing"}),
    )
    out = rules.apply(sample("Observation"))
    assert out.resource["language"] == "en"
    assert [(c.rule_id, c.kind, c.paths) for c in out.changes] == [
        (1, K.DEFAULT_VALUE, ["language"]),
        (2, K.STRING_NORMALISE, ["language"]),
    ]


def test_resource_type_scoping() -> None:
    rules = compile_rules(
        [
            RuleSpec(1, K.DEFAULT_VALUE, {"path": "a", "value": 1}, "Observation"),
            RuleSpec(2, K.DEFAULT_VALUE, {"path": "b", "value": 2}, "*"),
        ]
    )
    obs, cond = rules.apply(sample("Observation")), rules.apply(sample("Condition"))
    assert obs.resource["a"] == 1 and obs.resource["b"] == 2
    assert "a" not in cond.resource and cond.resource["b"] == 2


def test_input_is_not_modified_unless_asked() -> None:
    obs = sample("Observation")
    rules = book((K.REDACT, {"path": "code"}))
    rules.apply(obs)
    assert "code" in obs
    rules.apply(obs, copy_input=False)
    assert "code" not in obs


def test_invalid_stored_rule_is_skipped_and_listed() -> None:
    rules = compile_rules(
        [
            RuleSpec(7, K.UNIT_CONVERSION, {"to_unit": "parsec"}),
            RuleSpec(8, K.DEFAULT_VALUE, {"path": "x", "value": 1}),
        ]
    )
    assert [r.id for r in rules.rules] == [8] and rules.invalid[0].rule_id == 7
    assert rules.apply({"resourceType": "Observation"}).resource["x"] == 1


def test_non_object_records_and_batches() -> None:
    rules = book((K.DEFAULT_VALUE, {"path": "x", "value": 1}))
    results = rules.apply_batch([None, [], "text", {"resourceType": 5}, sample("Patient")])
    assert [r.resource for r in results[:3]] == [None, [], "text"]
    assert results[3].resource["x"] == 1 and results[4].resource["x"] == 1


def test_a_crashing_rule_becomes_a_failure(monkeypatch) -> None:
    rules = book(
        (K.DEFAULT_VALUE, {"path": "x", "value": 1}), (K.DEFAULT_VALUE, {"path": "y", "value": 2})
    )

    def boom(resource: dict) -> list[str]:
        raise RuntimeError("secret value 123")

    object.__setattr__(rules.rules[0], "apply", boom)
    rules._pipelines.clear()
    out = rules.apply({"resourceType": "Observation"})
    assert out.resource == {"resourceType": "Observation", "y": 2}
    assert out.failures[0].message == "rule failed (RuntimeError)"
