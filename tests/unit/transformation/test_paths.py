"""The element path helper: get, set and delete with arrays."""

from __future__ import annotations

import pytest

from holovitals_sync.services.transformation.paths import ElementPath, PathSyntaxError

from .conftest import sample


def test_get_simple_nested_and_indexed() -> None:
    obs = sample("Observation")
    assert ElementPath("status").get(obs) == ["final"]
    assert ElementPath("valueQuantity.value").first(obs) == obs["valueQuantity"]["value"]
    assert ElementPath("code.coding[0].code").get(obs) == ["8867-4"]
    assert ElementPath("code.coding[5].code").get(obs) == []


def test_star_and_implicit_array_walks() -> None:
    res = {"name": [{"given": ["A", "B"]}, {"given": ["C"]}, {"family": "X"}]}
    assert ElementPath("name[*].given").get(res) == [["A", "B"], ["C"]]
    assert ElementPath("name.given").get(res) == [["A", "B"], ["C"]]
    assert ElementPath("name.given[1]").get(res) == ["B"]


def test_missing_paths_and_wrong_shapes_give_nothing() -> None:
    for res in ({}, {"code": "text"}, {"code": {"coding": "nope"}}, {"code": None}, [], 7):
        assert ElementPath("code.coding[0].code").get(res) == []
        assert ElementPath("code.coding.code").get(res) == []


def test_set_creates_parents_and_writes_every_location() -> None:
    res: dict = {}
    assert ElementPath("a.b.c").set(res, 1) == 1
    assert ElementPath("list[0].x").set(res, 2) == 1
    assert res == {"a": {"b": {"c": 1}}, "list": [{"x": 2}]}
    names = {"name": [{"family": "a"}, {"family": "b"}]}
    assert ElementPath("name[*].family").set(names, "z") == 2
    assert names == {"name": [{"family": "z"}, {"family": "z"}]}


def test_set_does_not_invent_items_for_star() -> None:
    res: dict = {}
    assert ElementPath("name[*].family").set(res, "z") == 0
    assert ElementPath("a[3]").set({"a": []}, 1) == 0


def test_delete_fields_items_and_missing() -> None:
    res = {"note": [{"text": "a"}, {"text": "b"}], "code": {"text": "t"}}
    assert ElementPath("note[*].text").delete(res) == 2
    assert ElementPath("code.text").delete(res) == 1
    assert ElementPath("nothing.here").delete(res) == 0
    assert ElementPath("note[*]").delete(res) == 2
    assert res == {"note": [], "code": {}}


@pytest.mark.parametrize("bad", ["", "a..b", "a[", "a[x]", "1abc", "a.b[-1]", "a b"])
def test_syntax_errors(bad: str) -> None:
    with pytest.raises(PathSyntaxError):
        ElementPath(bad)
