"""Hypothesis strategies for arbitrary JSON objects and one rule of every kind."""

from __future__ import annotations

from hypothesis import strategies as st

from holovitals_sync.models import TransformKind as K

KEYS = st.sampled_from(
    [
        "resourceType",
        "status",
        "code",
        "coding",
        "system",
        "text",
        "valueQuantity",
        "value",
        "unit",
        "effectiveDateTime",
        "name",
        "given",
        "note",
        "subject",
        "language",
        "x",
    ]
)
# JSON has no NaN or infinities.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=30,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=8)

ALL_KINDS = [
    (K.COPY_FIELD, {"source": "code.coding[0]", "target": "x.y", "move": True}),
    (K.VALUE_MAP, {"path": "status", "mapping": {"final": "amended"}}),
    (
        K.CODE_TRANSLATION,
        {
            "source_system": "http://loinc.org",
            "target_system": "urn:x",
            "entries": [{"source": "1-1", "target": "A"}],
        },
    ),
    (K.UNIT_CONVERSION, {"to_unit": "kg"}),
    (K.UNIT_CONVERSION, {"path": "valueQuantity[*]", "to_unit": "Cel"}),
    (K.DATETIME_NORMALISE, {"paths": ["effectiveDateTime", "x[*].value"]}),
    (K.STRING_NORMALISE, {"paths": ["name[*].given", "text", "code.text"], "case": "upper"}),
    (K.DEFAULT_VALUE, {"path": "code.coding[0].system", "value": {"a": [1]}}),
    (K.REDACT, {"path": "note[*].text", "mode": "mask"}),
    (K.REDACT, {"path": "name.given"}),
    (K.COMPUTED, {"expression": "valueQuantity.value + 1", "target": "x.z"}),
    (K.COMPUTED, {"expression": "name.given.first()", "target": "text"}),
]
