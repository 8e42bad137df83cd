"""Three-way merge on FHIR-shaped examples."""

from __future__ import annotations

from holovitals_sync.services.conflicts import MISSING, Side, three_way


def patient(**fields):
    return {"resourceType": "Patient", "id": "p1", **fields}


def test_one_sided_changes_of_both_sides_are_merged():
    base = patient(gender="male", birthDate="1970-01-01")
    local = patient(gender="female", birthDate="1970-01-01")
    remote = patient(gender="male", birthDate="1971-01-01")
    result = three_way(base, local, remote)
    assert result.clean
    assert result.merged == patient(gender="female", birthDate="1971-01-01")


def test_same_element_changed_differently_is_a_conflict_with_all_three_values():
    base, local, remote = patient(gender="male"), patient(gender="female"), patient(gender="other")
    result = three_way(base, local, remote)
    assert [(c.path, c.base, c.local, c.remote) for c in result.conflicts] == [
        ("gender", "male", "female", "other")
    ]
    assert result.merged["gender"] == "female"  # local kept until decided


def test_identical_changes_are_not_a_conflict():
    base, both = patient(gender="male"), patient(gender="female")
    assert three_way(base, both, dict(both)).clean


def test_meta_is_ignored_and_taken_from_the_remote():
    base = patient(gender="male", meta={"versionId": "1"})
    local = patient(gender="male", meta={"versionId": "1", "lastUpdated": "x"})
    remote = patient(gender="male", meta={"versionId": "2"})
    result = three_way(base, local, remote)
    assert result.clean and result.merged["meta"] == {"versionId": "2"}


def test_deletion_against_an_edit_is_a_conflict():
    base = patient(gender="male")
    result = three_way(base, patient(), patient(gender="female"))
    assert result.paths == ["gender"]
    assert result.conflicts[0].local is MISSING


def test_codings_match_by_system_and_code_not_position():
    def obs(codings, status="final"):
        return {"resourceType": "Observation", "status": status, "code": {"coding": codings}}

    a, b = {"system": "http://loinc.org", "code": "1"}, {"system": "http://loinc.org", "code": "2"}
    c = {"system": "http://snomed.info/sct", "code": "3"}
    base = obs([a, b])
    local = obs([b, a], status="amended")  # reordered: no change
    remote = obs([a, b, c])
    result = three_way(base, local, remote)
    assert result.clean
    assert result.merged == obs([b, a, c], status="amended")


def test_identifier_element_edited_on_both_sides_is_named_by_base_index():
    ident = {"system": "urn:mrn", "value": "123"}
    base = patient(identifier=[{"system": "urn:ssn", "value": "9"}, ident])
    local = patient(identifier=[{**ident, "use": "usual"}, {"system": "urn:ssn", "value": "9"}])
    remote = patient(identifier=[{"system": "urn:ssn", "value": "9"}, {**ident, "use": "old"}])
    result = three_way(base, local, remote)
    assert result.paths == ["identifier[1].use"]
    assert "123" not in result.paths[0]  # identifier values never appear in a path


def test_positional_arrays_merge_per_index():
    base = patient(name=[{"family": "A", "given": ["x"]}])
    local = patient(name=[{"family": "B", "given": ["x"]}])
    remote = patient(name=[{"family": "A", "given": ["x", "y"]}])
    result = three_way(base, local, remote)
    assert result.clean
    assert result.merged["name"] == [{"family": "B", "given": ["x", "y"]}]


def test_misaligned_removal_conflicts_on_the_whole_array():
    base = patient(name=[{"text": "a"}, {"text": "b"}, {"text": "c"}])
    local = patient(name=[{"text": "a"}, {"text": "b"}])
    remote = patient(name=[{"text": "a"}, {"text": "B"}, {"text": "c"}, {"text": "d"}])
    result = three_way(base, local, remote)
    assert result.paths == ["name"]


def test_choices_settle_conflicts():
    base = patient(gender="male", birthDate="1970")
    local = patient(gender="female", birthDate="1971")
    remote = patient(gender="other", birthDate="1972")
    result = three_way(base, local, remote, choices={"gender": Side.REMOTE, "birthDate": "1999"})
    assert result.clean
    assert result.merged == patient(gender="other", birthDate="1999")
    assert result.chosen == {"gender": "other", "birthDate": "1999"}


def test_no_base_means_every_differing_element_conflicts():
    result = three_way(None, patient(gender="male"), patient(gender="female"))
    assert result.paths == ["gender"]
