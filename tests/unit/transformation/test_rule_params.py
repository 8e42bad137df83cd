"""Rule parameters are typed and checked when a rule is saved, not during a sync."""

from __future__ import annotations

import pytest

from holovitals_sync.models import TransformKind as K
from holovitals_sync.services.transformation import InvalidRule, dump_params, parse_params
from holovitals_sync.services.transformation.rules import ComputedParams, UnitConversionParams


def test_valid_params_round_trip_without_the_kind() -> None:
    params = parse_params(K.UNIT_CONVERSION, {"to_unit": "mmol/L"})
    assert isinstance(params, UnitConversionParams)
    stored = dump_params(params)
    assert "kind" not in stored and parse_params("unit_conversion", stored) == params


@pytest.mark.parametrize(
    "expression",
    [
        "Observation.(",
        "valueQuantity.value *",
        "code.coding.where(",
        "name.given.bogusfn()",
        "   ",
    ],
)
def test_invalid_fhirpath_is_a_rule_error_at_save_time(expression: str) -> None:
    with pytest.raises(InvalidRule) as caught:
        parse_params(K.COMPUTED, {"expression": expression, "target": "x"})
    assert caught.value.errors[0][0] == "expression"
    assert "FHIRPath" in str(caught.value) or "at least 1" in str(caught.value)


def test_valid_fhirpath_is_accepted() -> None:
    params = parse_params(
        K.COMPUTED, {"expression": "name.given.first() & ' ' & name.family", "target": "text.div"}
    )
    assert isinstance(params, ComputedParams)


@pytest.mark.parametrize(
    ("kind", "params", "where"),
    [
        (K.UNIT_CONVERSION, {"to_unit": "furlong"}, "to_unit"),
        (K.COPY_FIELD, {"source": "a..b", "target": "x"}, "source"),
        (K.COPY_FIELD, {"source": "a", "target": "x", "extra": 1}, "extra"),
        (K.VALUE_MAP, {"path": "status", "mapping": {}}, "mapping"),
        (
            K.DATETIME_NORMALISE,
            {"paths": ["effectiveDateTime"], "assume_timezone": "Mars/Base"},
            "assume_timezone",
        ),
        (K.STRING_NORMALISE, {"paths": ["name[x]"]}, "paths"),
        (
            K.CODE_TRANSLATION,
            {"source_system": "a", "target_system": "b", "entries": []},
            "entries",
        ),
        (K.REDACT, {"path": "note", "mode": "shred"}, "mode"),
        (K.DEFAULT_VALUE, {"value": 1}, "path"),
        ("no_such_kind", {}, "kind"),
    ],
)
def test_bad_params_name_the_field(kind: str, params: dict, where: str) -> None:
    with pytest.raises(InvalidRule) as caught:
        parse_params(kind, params)
    assert where in caught.value.errors[0][0]


def test_params_must_be_an_object() -> None:
    with pytest.raises(InvalidRule):
        parse_params(K.REDACT, ["note"])  # type: ignore[arg-type]
