"""Property tests: rules never raise on arbitrary JSON (disabled rules: integration tests)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings

from holovitals_sync.services.transformation import RuleSpec, compile_rules

from .strategies import ALL_KINDS, JSON, OBJECTS

BOOK = compile_rules(RuleSpec(i, kind, params) for i, (kind, params) in enumerate(ALL_KINDS))


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(OBJECTS)
def test_applying_rules_never_raises(resource: dict[str, Any]) -> None:
    before = copy.deepcopy(resource)
    result = BOOK.apply(resource)
    assert isinstance(result.resource, dict)
    assert resource == before  # the input is left as it was


@settings(max_examples=100, deadline=None, database=None)
@given(JSON)
def test_any_json_value_never_raises(value: Any) -> None:
    BOOK.apply_batch([value, {"resourceType": "Observation", "valueQuantity": value}])
