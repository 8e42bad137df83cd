"""Lists merge by the slot each element fills, not by its value.

Both sides replacing a patient's only phone number once merged into two numbers, written to
the EHR with no conflict. A slot (telecom by system+use, identifier by system, name and
address by use) changed differently on both sides is a conflict; only additions merge.
"""

from __future__ import annotations

from holovitals_sync.services.conflicts.diff import three_way

HOME = {"system": "phone", "use": "home"}


def _patient(**fields) -> dict:
    return {"resourceType": "Patient", "id": "p1", **fields}


def test_both_sides_replacing_the_home_phone_is_a_conflict():
    base = _patient(telecom=[{**HOME, "value": "555-0100"}])
    local = _patient(telecom=[{**HOME, "value": "555-0111"}])
    remote = _patient(telecom=[{**HOME, "value": "555-0122"}])
    result = three_way(base, local, remote)
    assert result.paths == ["telecom[0].value"]
    assert (result.conflicts[0].local, result.conflicts[0].remote) == ("555-0111", "555-0122")
    assert result.merged["telecom"] == local["telecom"]  # nothing doubled meanwhile


def test_additions_in_different_slots_merge_and_the_same_addition_is_taken_once():
    base = _patient(telecom=[{**HOME, "value": "555-0100"}])
    mobile = {"system": "phone", "use": "mobile", "value": "555-0199"}
    email = {"system": "email", "use": "home", "value": "pat@example.org"}
    local = _patient(telecom=[{**HOME, "value": "555-0100"}, mobile, email])
    remote = _patient(telecom=[email, {**HOME, "value": "555-0100"}])  # reordered too
    result = three_way(base, local, remote)
    assert result.clean
    assert result.merged["telecom"] == [{**HOME, "value": "555-0100"}, mobile, email]


def test_identifier_by_system_and_name_by_use():
    mrn = "urn:oid:1.2.3"
    base = _patient(
        identifier=[{"system": mrn, "value": "A1"}], name=[{"use": "official", "family": "Smith"}]
    )
    local = _patient(
        identifier=[{"system": mrn, "value": "A2"}], name=[{"use": "official", "family": "Smyth"}]
    )
    remote = _patient(
        identifier=[{"system": mrn, "value": "A3"}],
        name=[{"use": "official", "family": "Smith"}, {"use": "nickname", "given": ["Jo"]}],
    )
    result = three_way(base, local, remote)
    assert result.paths == ["identifier[0].value"]  # the same MRN slot changed two ways
    assert result.merged["name"] == [
        {"use": "official", "family": "Smyth"},
        {"use": "nickname", "given": ["Jo"]},
    ]


def test_elements_without_a_slot_fall_back_to_positions():
    base = _patient(name=[{"family": "Smith"}])
    local = _patient(name=[{"family": "Smyth"}])
    remote = _patient(name=[{"family": "Smithe"}])
    assert three_way(base, local, remote).paths == ["name[0].family"]
