"""Custom validation rules stored as parameters: value ranges, patterns, FHIRPath asserts.

Rules are typed (one pydantic model per check, discriminated by `check`), validated when
configured and compiled once per batch. Messages name the rule, never the value. Each rule
carries an `id` (given when it is saved through `services.validation_rules`) and an
`enabled` flag: a disabled rule stays configured but is not run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ...models import ErrorSeverity
from ..transformation import fhirpath
from ..transformation.paths import ElementPath, PathSyntaxError
from .issues import Layer, ValidationIssue, identity

RULE_ID = r"^[A-Za-z0-9_-]{1,40}$"
RESOURCE_TYPE = r"^(\*|[A-Z][A-Za-z]{0,63})$"  # "*" or a FHIR resource type name


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str | None = Field(default=None, pattern=RULE_ID)  # stable handle for edits
    name: str = Field(min_length=1, max_length=100)  # shown in the error message
    resource_type: str = Field(default="*", pattern=RESOURCE_TYPE)
    severity: ErrorSeverity = ErrorSeverity.ERROR
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a rule needs a name")
        return value.strip()


class _PathCheck(_Check):
    path: str = Field(min_length=1, max_length=300)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        try:
            ElementPath(value)
        except PathSyntaxError as exc:
            raise ValueError(str(exc)) from None
        return value


class RangeCheck(_PathCheck):
    """Numbers at `path` lie within [min, max]."""

    check: Literal["range"] = "range"
    # Finite bounds only: JSON has no infinity, and a stored NaN would never compare.
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)

    @field_validator("max")
    @classmethod
    def _bounds(cls, value: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("min")
        if value is not None and low is not None and low > value:
            raise ValueError("max is less than min")
        return value


class PatternCheck(_PathCheck):
    """Strings at `path` match a regular expression (full match)."""

    check: Literal["pattern"] = "pattern"
    pattern: str = Field(min_length=1, max_length=500)

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class FhirPathAssertion(_Check):
    """A FHIRPath expression that must evaluate to true."""

    check: Literal["fhirpath"] = "fhirpath"
    expression: str = Field(min_length=1, max_length=2000)

    @field_validator("expression")
    @classmethod
    def _fhirpath(cls, value: str) -> str:
        try:
            fhirpath.check(value)
        except fhirpath.FhirPathError as exc:
            raise ValueError(f"invalid FHIRPath: {exc}") from None
        return value


CustomRule = Annotated[RangeCheck | PatternCheck | FhirPathAssertion, Field(discriminator="check")]
_ADAPTER: TypeAdapter[CustomRule] = TypeAdapter(CustomRule)
Checker = Callable[[dict[str, Any]], list[tuple[str | None, str]]]


def parse_rule(params: dict[str, Any] | CustomRule) -> CustomRule:
    """Validate one stored custom rule (raises pydantic's ValidationError)."""
    return params if isinstance(params, BaseModel) else _ADAPTER.validate_python(params)


def dump_rule(rule: CustomRule) -> dict[str, Any]:
    """The JSON stored in `EHRConnection.validation_rules` for one rule."""
    data = rule.model_dump(mode="json", exclude_none=True)
    return {"check": data.pop("check"), **data}


def rule_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) pairs of a refused rule; the union tag is left out of the field."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] in _BUILD and len(loc) > 1:  # ("pattern", "pattern") -> "pattern"
            loc = loc[1:]
        field, message = ".".join(loc) or "check", err["msg"].removeprefix("Value error, ")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field, message = "check", f"choose a check: {', '.join(_BUILD)}"
        elif field == "resource_type" and err["type"] == "string_pattern_mismatch":
            message = "a FHIR resource type such as Observation, or * for every type"
        elif field == "id" and err["type"] == "string_pattern_mismatch":
            message = "letters, digits, - and _ only (at most 40)"
        out.append((field, message))
    return out


def _range(rule: RangeCheck) -> Checker:
    path = ElementPath(rule.path)

    def run(resource: dict[str, Any]) -> list[tuple[str | None, str]]:
        for value in path.get(resource):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return [(rule.path, f"{rule.name}: value is not a number")]
            if (rule.min is not None and value < rule.min) or (
                rule.max is not None and value > rule.max
            ):
                return [(rule.path, f"{rule.name}: value outside the allowed range")]
        return []

    return run


def _pattern(rule: PatternCheck) -> Checker:
    path, regex = ElementPath(rule.path), re.compile(rule.pattern)

    def run(resource: dict[str, Any]) -> list[tuple[str | None, str]]:
        for value in path.get(resource):
            if not isinstance(value, str) or regex.fullmatch(value) is None:
                return [(rule.path, f"{rule.name}: value does not match the required pattern")]
        return []

    return run


def _assertion(rule: FhirPathAssertion) -> Checker:
    evaluate = fhirpath.compile_expression(rule.expression)

    def run(resource: dict[str, Any]) -> list[tuple[str | None, str]]:
        try:
            result = evaluate(resource)
        except Exception:  # fhirpathpy raises bare Exception on type errors in data
            return [(None, f"{rule.name}: assertion could not be evaluated")]
        if result == [True]:
            return []
        return [(None, f"{rule.name}: assertion failed")]

    return run


_BUILD: dict[str, Callable[[Any], Checker]] = {
    "range": _range,
    "pattern": _pattern,
    "fhirpath": _assertion,
}


class CustomValidator:
    """Custom rules compiled once; `check` runs those that apply to a resource's type."""

    def __init__(self, rules: Iterable[dict[str, Any] | CustomRule]) -> None:
        parsed = [parse_rule(r) for r in rules]
        # Disabled rules are still validated (a stored rule must stay loadable) but not run.
        self._rules = [(r, _BUILD[r.check](r)) for r in parsed if r.enabled]

    def check(self, resource: Any) -> list[ValidationIssue]:
        rtype, rid = identity(resource)
        if not isinstance(resource, dict):
            return []
        issues = []
        for rule, run in self._rules:
            if rule.resource_type not in ("*", rtype):
                continue
            for path, message in run(resource):
                issues.append(
                    ValidationIssue(rtype, rid, path, message, Layer.CUSTOM, rule.severity)
                )
        return issues
