"""Unit conversion from the UCUM factor table."""

from __future__ import annotations

import pytest

from holovitals_sync.models import TransformKind as K
from holovitals_sync.services.transformation import units

from .conftest import book, sample


def _quantity(obs: dict, value: float, unit: str) -> dict:
    obs["valueQuantity"] = {"value": value, "unit": unit, "system": units.UCUM_SYSTEM, "code": unit}
    return obs


def test_glucose_mg_dl_to_mmol_l_by_analyte() -> None:
    obs = _quantity(sample("Observation", "2345-7"), 180, "mg/dL")
    out = book((K.UNIT_CONVERSION, {"to_unit": "mmol/L"})).apply(obs).resource
    assert out["valueQuantity"] == {
        "value": 9.99,
        "unit": "mmol/L",
        "system": units.UCUM_SYSTEM,
        "code": "mmol/L",
    }
    back = book((K.UNIT_CONVERSION, {"to_unit": "mg/dL", "decimals": 0})).apply(out).resource
    assert back["valueQuantity"]["value"] == 180


def test_molar_conversion_needs_a_known_analyte() -> None:
    hgb = _quantity(sample("Observation", "718-7"), 180, "mg/dL")
    out = book((K.UNIT_CONVERSION, {"to_unit": "mmol/L"})).apply(hgb)
    assert out.resource["valueQuantity"]["value"] == 180 and out.failures


@pytest.mark.parametrize(
    ("value", "unit", "to", "expected"),
    [
        (150, "[lb_av]", "kg", 68.04),
        (150, "lb", "kg", 68.04),
        (100, "kg", "[lb_av]", 220.46),
        (98.6, "[degF]", "Cel", 37.0),
        (37, "Cel", "[degF]", 98.6),
        (70, "[in_i]", "cm", 177.8),
        (14.2, "g/dL", "g/L", 142.0),
        (142, "g/L", "g/dL", 14.2),
    ],
)
def test_generic_conversions(value: float, unit: str, to: str, expected: float) -> None:
    obs = _quantity(sample("Observation"), value, unit)
    out = book((K.UNIT_CONVERSION, {"to_unit": to})).apply(obs).resource
    assert out["valueQuantity"]["value"] == pytest.approx(expected)
    assert out["valueQuantity"]["code"] == units.canonical(to)


def test_unknown_unit_is_left_untouched_and_reported() -> None:
    obs = _quantity(sample("Observation"), 5, "furlong")
    out = book((K.UNIT_CONVERSION, {"to_unit": "kg"})).apply(obs)
    assert out.resource["valueQuantity"]["value"] == 5 and not out.changed
    assert len(out.failures) == 1 and "furlong" not in out.failures[0].message


def test_filters_same_unit_missing_and_non_numeric_values() -> None:
    rule = (K.UNIT_CONVERSION, {"to_unit": "kg", "from_units": ["[lb_av]"]})
    assert not book(rule).apply(_quantity(sample("Observation"), 5, "g")).changed
    assert not book(rule).apply(_quantity(sample("Observation"), 5, "kg")).changed
    assert not book(rule).apply(sample("Condition")).changed
    weird = book(rule).apply(_quantity(sample("Observation"), "5", "[lb_av]"))
    assert weird.failures and weird.resource["valueQuantity"]["value"] == "5"
    only = (K.UNIT_CONVERSION, {"to_unit": "kg", "analyte_codes": ["29463-7"]})
    assert not book(only).apply(_quantity(sample("Observation"), 5, "[lb_av]")).changed


def test_reference_ranges_in_an_array() -> None:
    obs = _quantity(sample("Observation"), 98.6, "[degF]")
    obs["referenceRange"] = [
        {"low": {"value": 97.0, "code": "[degF]"}, "high": {"value": 99.5, "code": "[degF]"}}
    ]
    rules = [
        (K.UNIT_CONVERSION, {"path": p, "to_unit": "Cel", "decimals": 1})
        for p in ("valueQuantity", "referenceRange[*].low", "referenceRange[*].high")
    ]
    out = book(*rules).apply(obs).resource
    assert out["referenceRange"][0]["low"]["value"] == 36.1
    assert out["referenceRange"][0]["high"]["value"] == 37.5


def test_table_inverts_every_entry() -> None:
    for (analyte, src, dst), conv in units.TABLE.items():
        back = units.TABLE[(analyte, dst, src)]
        assert back(conv(12.5)) == pytest.approx(12.5)
