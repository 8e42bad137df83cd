"""One builder per rule kind: typed parameters in, a fast per-record callable out.

Each callable takes a resource (a dict) and returns the element paths it changed (empty
when it changed nothing). A rule that cannot apply to a record raises `NotApplicable`
with a message free of record values; anything else it raises is a bug the pipeline
catches and records, so a sync never stops on one odd record.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ...models import TransformKind
from . import datetimes, fhirpath, units
from .codes import ConceptMap, Target
from .paths import ElementPath
from .rules import (
    CodeTranslationParams,
    ComputedParams,
    CopyFieldParams,
    DatetimeNormaliseParams,
    DefaultValueParams,
    RedactParams,
    RuleParams,
    StringNormaliseParams,
    UnitConversionParams,
    ValueMapParams,
)

Apply = Callable[[dict[str, Any]], list[str]]
_WHITESPACE = re.compile(r"\s+")


class NotApplicable(Exception):
    """The rule could not apply to this record; `changed` lists what it did change."""

    def __init__(self, message: str, changed: list[str] | None = None) -> None:
        super().__init__(message)
        self.changed = changed or []


def _clone(value: Any) -> Any:
    # Scalars are immutable; containers must not be shared between two places in a record.
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def copy_field(p: CopyFieldParams) -> Apply:
    source, target = ElementPath(p.source), ElementPath(p.target)

    def apply(resource: dict[str, Any]) -> list[str]:
        values = source.get(resource)
        if not values or (not p.overwrite and target.get(resource)):
            return []
        if not target.set(resource, _clone(values[0])):
            return []
        if p.move:
            source.delete(resource)
            return [p.target, p.source]
        return [p.target]

    return apply


def value_map(p: ValueMapParams) -> Apply:
    path = ElementPath(p.path)
    fold = str.casefold if p.case_insensitive else None
    table = {fold(k): v for k, v in p.mapping.items()} if fold else dict(p.mapping)

    def mapped(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return table.get(fold(value) if fold else value, value)

    def apply(resource: dict[str, Any]) -> list[str]:
        return [p.path] if _rewrite(path, resource, mapped) else []

    return apply


def _rewrite(path: ElementPath, resource: Any, fn: Callable[[Any], Any]) -> bool:
    """Replace each value (or each item of a list value) at `path` by `fn(value)`."""
    changed = False
    for container, key in path.locations(resource):
        try:
            old = container[key]
        except (KeyError, IndexError, TypeError):
            continue
        new = [fn(item) for item in old] if isinstance(old, list) else fn(old)
        if new != old:
            container[key] = new
            changed = True
    return changed


def code_translation(p: CodeTranslationParams) -> Apply:
    path = ElementPath(p.path)
    table = {e.source: Target(e.target, e.display) for e in p.entries}
    concept_map = ConceptMap(
        source_system=p.source_system, target_system=p.target_system, table=table
    )

    def apply(resource: dict[str, Any]) -> list[str]:
        changed = False
        for concept in path.get(resource):
            for item in concept if isinstance(concept, list) else [concept]:
                changed = concept_map.translate_concept(item) or changed
        return [p.path] if changed else []

    return apply


def _analytes(resource: dict[str, Any]) -> tuple[str, ...]:
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list):
        return ()
    return tuple(
        c["code"] for c in codings if isinstance(c, dict) and isinstance(c.get("code"), str)
    )


def unit_conversion(p: UnitConversionParams) -> Apply:
    path = ElementPath(p.path)
    to_code = units.canonical(p.to_unit)
    from_units = {units.canonical(u) for u in p.from_units} if p.from_units else None
    wanted = set(p.analyte_codes) if p.analyte_codes else None

    def convert(quantity: Any, resource: dict[str, Any]) -> bool:
        if not isinstance(quantity, dict):
            return False
        value, unit = quantity.get("value"), quantity.get("code") or quantity.get("unit")
        if value is None or not isinstance(unit, str):
            return False
        unit = units.canonical(unit)
        if unit == to_code or (from_units is not None and unit not in from_units):
            return False
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise NotApplicable("quantity value is not a number; left unchanged")
        conversion = units.find(unit, to_code, _analytes(resource))
        if conversion is None:
            raise NotApplicable(
                f"no conversion to {to_code} for this quantity's unit; left unchanged"
            )
        result = conversion(value)
        quantity["value"] = round(result, p.decimals) if p.decimals is not None else result
        quantity.update(unit=p.to_unit, code=to_code, system=units.UCUM_SYSTEM)
        return True

    def apply(resource: dict[str, Any]) -> list[str]:
        if wanted is not None and wanted.isdisjoint(_analytes(resource)):
            return []
        changed = False
        for quantity in path.get(resource):
            changed = convert(quantity, resource) or changed
        return [p.path] if changed else []

    return apply


def datetime_normalise(p: DatetimeNormaliseParams) -> Apply:
    paths = [ElementPath(text) for text in p.paths]

    def apply(resource: dict[str, Any]) -> list[str]:
        failed = False  # per call, so one compiled rule can serve several threads

        def one(value: Any) -> Any:
            nonlocal failed
            if not isinstance(value, str):
                return value
            try:
                return datetimes.normalise(value, assume_timezone=p.assume_timezone, style=p.style)
            except datetimes.UnparseableDate:
                failed = True
                return value

        changed = [path.text for path in paths if _rewrite(path, resource, one)]
        if failed:
            raise NotApplicable("a value is not a FHIR date or dateTime; left unchanged", changed)
        return changed

    return apply


def _string_fn(p: StringNormaliseParams) -> Callable[[str], str]:
    case = {"lower": str.lower, "upper": str.upper, "title": str.title}.get(p.case)

    def norm(value: str) -> str:
        if p.nfc:
            value = unicodedata.normalize("NFC", value)
        if p.collapse_whitespace:
            value = _WHITESPACE.sub(" ", value)
        if p.trim:
            value = value.strip()
        return case(value) if case else value

    return norm


def string_normalise(p: StringNormaliseParams) -> Apply:
    paths = [ElementPath(text) for text in p.paths]
    norm = _string_fn(p)

    def one(value: Any) -> Any:
        return norm(value) if isinstance(value, str) else value

    def apply(resource: dict[str, Any]) -> list[str]:
        return [path.text for path in paths if _rewrite(path, resource, one)]

    return apply


def default_value(p: DefaultValueParams) -> Apply:
    path = ElementPath(p.path)

    def apply(resource: dict[str, Any]) -> list[str]:
        if path.get(resource):
            return []
        return [p.path] if path.set(resource, _clone(p.value)) else []

    return apply


def redact(p: RedactParams) -> Apply:
    path = ElementPath(p.path)

    def mask(value: Any) -> Any:
        return p.replacement

    def apply(resource: dict[str, Any]) -> list[str]:
        if p.mode == "drop":
            return [p.path] if path.delete(resource) else []
        present = [(c, k) for c, k in path.locations(resource) if _has(c, k)]
        for container, key in present:
            container[key] = mask(container[key])
        return [p.path] if present else []

    return apply


def _has(container: Any, key: Any) -> bool:
    if isinstance(container, dict):
        return container.get(key) is not None
    return isinstance(container, list) and 0 <= key < len(container)


def _json_value(value: Any) -> Any:
    """fhirpathpy answers Decimals and its own date types; store plain JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if value is None or isinstance(value, str | int | float | bool | dict | list):
        return value
    return str(value)


def computed(p: ComputedParams) -> Apply:
    evaluate = fhirpath.compile_expression(p.expression)
    target = ElementPath(p.target)

    def apply(resource: dict[str, Any]) -> list[str]:
        try:
            result = [_json_value(v) for v in evaluate(resource)]
        except Exception:  # fhirpathpy raises bare Exception for type errors in data
            raise NotApplicable("expression could not be evaluated on this record") from None
        if not result and p.skip_empty:
            return []
        value = result if p.as_list else (result[0] if result else None)
        if value is None:
            return [p.target] if target.delete(resource) else []
        if target.get(resource) == ([value] if value is not None else []):
            return []
        return [p.target] if target.set(resource, value) else []

    return apply


BUILDERS: dict[TransformKind, Callable[[Any], Apply]] = {
    TransformKind.COPY_FIELD: copy_field,
    TransformKind.VALUE_MAP: value_map,
    TransformKind.CODE_TRANSLATION: code_translation,
    TransformKind.UNIT_CONVERSION: unit_conversion,
    TransformKind.DATETIME_NORMALISE: datetime_normalise,
    TransformKind.STRING_NORMALISE: string_normalise,
    TransformKind.DEFAULT_VALUE: default_value,
    TransformKind.REDACT: redact,
    TransformKind.COMPUTED: computed,
}


def build(params: RuleParams) -> Apply:
    """The per-record callable for validated parameters."""
    return BUILDERS[params.kind](params)
