"""Each of the nine transformation kinds, with missing paths, arrays and odd values."""

from __future__ import annotations

from holovitals_sync.models import TransformKind as K

from .conftest import book, sample

LOCAL = "urn:local:lab"


def test_copy_and_move_field() -> None:
    obs = sample("Observation")
    out = book((K.COPY_FIELD, {"source": "effectiveDateTime", "target": "issued"})).apply(obs)
    assert out.resource["issued"] == obs["effectiveDateTime"] == out.resource["effectiveDateTime"]
    moved = book((K.COPY_FIELD, {"source": "code.text", "target": "note[0].text", "move": True}))
    res = moved.apply(obs).resource
    assert res["note"] == [{"text": "Heart rate"}] and "text" not in res["code"]


def test_copy_missing_source_and_no_overwrite_are_no_ops() -> None:
    obs = sample("Observation")
    assert not book((K.COPY_FIELD, {"source": "nope.x", "target": "issued"})).apply(obs).changed
    keep = book((K.COPY_FIELD, {"source": "status", "target": "code.text", "overwrite": False}))
    assert keep.apply(obs).resource["code"]["text"] == "Heart rate"


def test_copied_containers_are_not_shared() -> None:
    res = (
        book((K.COPY_FIELD, {"source": "code", "target": "extra"}))
        .apply(sample("Observation"))
        .resource
    )
    res["extra"]["text"] = "changed"
    assert res["code"]["text"] == "Heart rate"


def test_value_map_exact_case_insensitive_and_arrays() -> None:
    obs = sample("Observation") | {"status": "Prelim"}
    rule = (K.VALUE_MAP, {"path": "status", "mapping": {"prelim": "preliminary"}})
    assert not book(rule).apply(obs).changed
    ci = (
        K.VALUE_MAP,
        {"path": "status", "mapping": {"prelim": "preliminary"}, "case_insensitive": True},
    )
    assert book(ci).apply(obs).resource["status"] == "preliminary"
    patient = {"resourceType": "Patient", "name": [{"given": ["Bob", "X"]}]}
    given = (K.VALUE_MAP, {"path": "name[*].given", "mapping": {"Bob": "Robert"}})
    assert book(given).apply(patient).resource["name"][0]["given"] == ["Robert", "X"]


def test_code_translation_keeps_original_and_is_idempotent() -> None:
    obs = sample("Observation", "2345-7")
    rule = (
        K.CODE_TRANSLATION,
        {
            "source_system": "http://loinc.org",
            "target_system": LOCAL,
            "entries": [{"source": "2345-7", "target": "GLU", "display": "Glucose"}],
        },
    )
    once = book(rule).apply(obs)
    codings = once.resource["code"]["coding"]
    assert codings[0] == obs["code"]["coding"][0]
    assert codings[1] == {"system": LOCAL, "code": "GLU", "display": "Glucose"}
    twice = book(rule).apply(once.resource)
    assert not twice.changed and len(twice.resource["code"]["coding"]) == 2


def test_code_translation_over_arrays_and_unmapped_codes() -> None:
    cond = sample("Condition")
    rule = (
        K.CODE_TRANSLATION,
        {
            "path": "category",
            "source_system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "target_system": LOCAL,
            "entries": [{"source": "problem-list-item", "target": "PL"}],
        },
    )
    assert book(rule).apply(cond).resource["category"][0]["coding"][-1]["code"] == "PL"
    other = (
        K.CODE_TRANSLATION,
        {
            "source_system": "http://loinc.org",
            "target_system": LOCAL,
            "entries": [{"source": "0000-0", "target": "X"}],
        },
    )
    assert not book(other).apply(sample("Observation")).changed


def test_datetime_normalise_to_utc_and_partial_dates_stay_partial() -> None:
    rule = (K.DATETIME_NORMALISE, {"paths": ["effectiveDateTime", "issued", "period.start"]})
    res = {
        "resourceType": "Observation",
        "effectiveDateTime": "2024-03-01T08:30:00-05:00",
        "issued": "2024-03",
        "period": {"start": "2020"},
    }
    out = book(rule).apply(res)
    assert out.resource["effectiveDateTime"] == "2024-03-01T13:30:00+00:00"
    assert out.resource["issued"] == "2024-03" and out.resource["period"]["start"] == "2020"
    assert out.changes[0].paths == ["effectiveDateTime"]


def test_datetime_assumed_zone_z_style_and_bad_values() -> None:
    rule = (
        K.DATETIME_NORMALISE,
        {
            "paths": ["effectiveDateTime", "issued"],
            "style": "z",
            "assume_timezone": "Europe/Berlin",
        },
    )
    res = {"effectiveDateTime": "2024-07-01T12:00:00", "issued": "yesterday"}
    out = book(rule).apply(res)
    assert out.resource["effectiveDateTime"] == "2024-07-01T10:00:00Z"
    assert out.resource["issued"] == "yesterday"
    assert len(out.failures) == 1 and "yesterday" not in out.failures[0].message
    assert out.changes[0].paths == ["effectiveDateTime"]


def test_string_normalise_trim_case_whitespace_nfc() -> None:
    decomposed = "Mu\u0308ller"  # u + combining diaeresis
    res = {"name": [{"family": f"  {decomposed} ", "given": [" ANNE  marie "]}]}
    rule = (K.STRING_NORMALISE, {"paths": ["name[*].family", "name[*].given"], "case": "title"})
    out = book(rule).apply(res).resource
    assert out["name"][0]["family"] == "M\u00fcller"
    assert out["name"][0]["given"] == ["Anne Marie"]
    assert not book(rule).apply(out).changed


def test_default_value_only_when_absent() -> None:
    rule = (K.DEFAULT_VALUE, {"path": "language", "value": "en-US"})
    assert book(rule).apply({"resourceType": "Patient"}).resource["language"] == "en-US"
    assert book(rule).apply({"language": "fr"}).resource["language"] == "fr"
    nested = (K.DEFAULT_VALUE, {"path": "meta.tag", "value": [{"code": "synced"}]})
    out = book(nested).apply(sample("Observation")).resource
    assert out["meta"]["tag"] == [{"code": "synced"}] and out["meta"]["versionId"] == "1"


def test_redact_drop_and_mask() -> None:
    res = {"note": [{"text": "private"}, {"text": "also"}], "code": {"text": "t"}}
    dropped = book((K.REDACT, {"path": "note"})).apply(res)
    assert "note" not in dropped.resource and res["note"]  # input untouched
    masked = book((K.REDACT, {"path": "note[*].text", "mode": "mask"})).apply(res).resource
    assert masked["note"] == [{"text": "[redacted]"}, {"text": "[redacted]"}]
    assert not book((K.REDACT, {"path": "text.div"})).apply(res).changed


def test_computed_field_from_fhirpath() -> None:
    obs = sample("Observation")
    rule = (K.COMPUTED, {"expression": "valueQuantity.value * 2", "target": "extra.double"})
    out = book(rule).apply(obs)
    assert out.resource["extra"]["double"] == obs["valueQuantity"]["value"] * 2
    div = (K.COMPUTED, {"expression": "valueQuantity.value / 4", "target": "q"})
    assert isinstance(book(div).apply(obs).resource["q"], float | int)
    codes = (K.COMPUTED, {"expression": "code.coding.code", "target": "codes", "as_list": True})
    assert book(codes).apply(obs).resource["codes"] == ["8867-4"]


def test_computed_empty_result_and_evaluation_errors() -> None:
    empty = (K.COMPUTED, {"expression": "note.text", "target": "x"})
    assert not book(empty).apply(sample("Observation")).changed
    # Type error in the data (string * number): recorded for the record, not raised.
    bad = (K.COMPUTED, {"expression": "status * 2", "target": "x"})
    out = book(bad).apply(sample("Observation"))
    assert out.failures and "x" not in out.resource
