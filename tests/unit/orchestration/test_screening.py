"""The screen's depth and size limits, at their boundaries (the fast path and the walk agree)."""

from __future__ import annotations

from typing import Any

import pytest

from holovitals_sync.services.orchestration.screening import MAX_DEPTH, MAX_STRING, problems


def _nested(levels: int) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Basic", "id": "b1"}
    inner = resource
    for _ in range(levels):
        inner["extension"] = [{"url": "http://example.org/x"}]
        inner = inner["extension"][0]
    return resource


def _messages(resource: dict[str, Any]) -> list[str]:
    return [message for _, message in problems(resource)]


@pytest.mark.parametrize("levels", [MAX_DEPTH // 2 - 1, MAX_DEPTH // 2])
def test_nesting_up_to_the_limit_passes(levels):
    # Each level is a list and an object: 2 x levels containers below the resource.
    assert _messages(_nested(levels)) == []


def test_one_level_past_the_limit_is_refused():
    found = problems(_nested(MAX_DEPTH // 2 + 1))
    assert found and {m for _, m in found} == {f"nested deeper than {MAX_DEPTH} levels"}
    assert all(path.startswith("extension[0].extension[0]") for path, _ in found)


def test_many_containers_side_by_side_are_not_deep():
    resource = {
        "resourceType": "Basic",
        "id": "b1",
        "extension": [{"url": "u", "valueCoding": {"code": str(i)}} for i in range(50)],
    }
    assert _messages(resource) == []


def test_brackets_inside_strings_do_not_count_as_nesting():
    resource = {
        "resourceType": "Basic",
        "id": "b1",
        "text": {"status": "generated", "div": "[{" * 100},
    }
    assert _messages(resource) == []


def test_a_string_past_the_size_limit_is_refused_and_one_at_it_passes():
    at_limit = {"resourceType": "Basic", "id": "b1", "implicitRules": "x" * MAX_STRING}
    assert _messages(at_limit) == []
    past = {"resourceType": "Basic", "id": "b1", "implicitRules": "x" * (MAX_STRING + 1)}
    assert problems(past) == [("implicitRules", f"string longer than {MAX_STRING} characters")]
