"""What a record becomes under each strategy (the pure part of resolution)."""

from __future__ import annotations

import pytest

from holovitals_sync.models import ResolutionStrategy as S
from holovitals_sync.services.conflicts import ResolutionError, resolved_body

BASE = {"resourceType": "Patient", "gender": "male", "birthDate": "1970", "active": True}
LOCAL = {"resourceType": "Patient", "gender": "female", "birthDate": "1971", "active": True}
REMOTE = {"resourceType": "Patient", "gender": "other", "birthDate": "1970", "active": False}


def test_merge_takes_one_sided_changes_and_the_chosen_side():
    body, chosen = resolved_body(S.MERGE, BASE, LOCAL, REMOTE, choices={"gender": "remote"})
    assert body == {
        "resourceType": "Patient",
        "gender": "other",
        "birthDate": "1971",
        "active": False,
    }
    assert chosen == {"gender": "other"}


def test_merge_needs_a_choice_for_every_conflicting_path():
    with pytest.raises(ResolutionError, match="no value given for: gender"):
        resolved_body(S.MERGE, BASE, LOCAL, REMOTE, choices={})
    with pytest.raises(ResolutionError, match="not conflicting paths: active"):
        resolved_body(S.MERGE, BASE, LOCAL, REMOTE, choices={"gender": "local", "active": "local"})
    with pytest.raises(ResolutionError, match="'local' or 'remote'"):
        resolved_body(S.MERGE, BASE, LOCAL, REMOTE, choices={"gender": "mine"})


def test_manual_value_is_used_and_shape_checked():
    body, chosen = resolved_body(S.MANUAL, BASE, LOCAL, REMOTE, values={"gender": "unknown"})
    assert body["gender"] == "unknown" and body["birthDate"] == "1971"
    with pytest.raises(ResolutionError, match="gender: expected string"):
        resolved_body(S.MANUAL, BASE, LOCAL, REMOTE, values={"gender": {"x": 1}})


def test_manual_none_removes_the_element():
    body, _ = resolved_body(S.MANUAL, BASE, LOCAL, REMOTE, values={"gender": None})
    assert "gender" not in body


def test_error_messages_carry_paths_not_values():
    with pytest.raises(ResolutionError) as info:
        resolved_body(S.MANUAL, BASE, LOCAL, REMOTE, values={"gender": 5})
    assert "female" not in str(info.value) and "other" not in str(info.value)
