"""Typed parameters for each rule kind: one pydantic model per kind, a discriminated union.

Parameters are checked when a rule is saved (paths parse, FHIRPath compiles, the unit
conversion exists), so a bad rule is refused then rather than failing during a sync.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from ...models import TransformKind
from . import fhirpath, units
from .paths import ElementPath, PathSyntaxError


def _check_path(value: str) -> str:
    try:
        ElementPath(value)
    except PathSyntaxError as exc:
        raise ValueError(str(exc)) from None
    return value


Path = Annotated[str, Field(min_length=1, max_length=300)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CopyFieldParams(_Params):
    """Copy (or move) the value at `source` to `target`."""

    kind: Literal[TransformKind.COPY_FIELD] = TransformKind.COPY_FIELD
    source: Path
    target: Path
    move: bool = False
    overwrite: bool = True

    _paths = field_validator("source", "target")(_check_path)


class ValueMapParams(_Params):
    """Replace values found in `mapping` (source -> target) at `path`."""

    kind: Literal[TransformKind.VALUE_MAP] = TransformKind.VALUE_MAP
    path: Path
    mapping: dict[str, Any] = Field(min_length=1)
    case_insensitive: bool = False

    _paths = field_validator("path")(_check_path)


class CodeMapEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str = Field(min_length=1)
    target: str = Field(min_length=1)
    display: str | None = None


class CodeTranslationParams(_Params):
    """Append a coding in `target_system` for each mapped coding of `source_system`."""

    kind: Literal[TransformKind.CODE_TRANSLATION] = TransformKind.CODE_TRANSLATION
    path: Path = "code"  # a CodeableConcept (or several)
    source_system: str = Field(min_length=1)
    target_system: str = Field(min_length=1)
    entries: list[CodeMapEntry] = Field(min_length=1)

    _paths = field_validator("path")(_check_path)


class UnitConversionParams(_Params):
    """Convert a Quantity to `to_unit` (UCUM), using analyte factors where needed."""

    kind: Literal[TransformKind.UNIT_CONVERSION] = TransformKind.UNIT_CONVERSION
    path: Path = "valueQuantity"
    to_unit: str = Field(min_length=1)
    from_units: list[str] | None = None  # only these source units; None: any known one
    analyte_codes: list[str] | None = None  # only resources whose `code` has one of these
    decimals: int | None = Field(default=2, ge=0, le=10)

    _paths = field_validator("path")(_check_path)

    @field_validator("to_unit")
    @classmethod
    def _known_unit(cls, value: str) -> str:
        if units.canonical(value) not in units.KNOWN_UNITS:
            raise ValueError("no conversion to this unit is in the UCUM factor table")
        return value


class DatetimeNormaliseParams(_Params):
    """Normalise date-times at `paths` to UTC; partial dates stay partial."""

    kind: Literal[TransformKind.DATETIME_NORMALISE] = TransformKind.DATETIME_NORMALISE
    paths: list[Path] = Field(min_length=1)
    assume_timezone: str = "UTC"  # for date-times that arrive without an offset
    style: Literal["offset", "z"] = "offset"  # "+00:00" or "Z"

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [_check_path(p) for p in value]

    @field_validator("assume_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception:
            raise ValueError("unknown IANA time zone") from None
        return value


class StringNormaliseParams(_Params):
    """Trim, collapse whitespace, change case and NFC-normalise strings at `paths`."""

    kind: Literal[TransformKind.STRING_NORMALISE] = TransformKind.STRING_NORMALISE
    paths: list[Path] = Field(min_length=1)
    trim: bool = True
    collapse_whitespace: bool = True
    case: Literal["none", "lower", "upper", "title"] = "none"
    nfc: bool = True

    _paths = field_validator("paths")(DatetimeNormaliseParams._paths.__func__)  # type: ignore[attr-defined]


class DefaultValueParams(_Params):
    """Set `value` at `path` when nothing is there."""

    kind: Literal[TransformKind.DEFAULT_VALUE] = TransformKind.DEFAULT_VALUE
    path: Path
    value: Any

    _paths = field_validator("path")(_check_path)


class RedactParams(_Params):
    """Drop the element at `path`, or replace it with `replacement` (mask)."""

    kind: Literal[TransformKind.REDACT] = TransformKind.REDACT
    path: Path
    mode: Literal["drop", "mask"] = "drop"
    replacement: str = "[redacted]"

    _paths = field_validator("path")(_check_path)


class ComputedParams(_Params):
    """Set `target` to the result of a FHIRPath `expression`."""

    kind: Literal[TransformKind.COMPUTED] = TransformKind.COMPUTED
    expression: str = Field(min_length=1, max_length=2000)
    target: Path
    as_list: bool = False  # keep every result rather than the first
    skip_empty: bool = True  # an empty result leaves the target as it is

    _paths = field_validator("target")(_check_path)

    @field_validator("expression")
    @classmethod
    def _fhirpath(cls, value: str) -> str:
        try:
            fhirpath.check(value)
        except fhirpath.FhirPathError as exc:
            raise ValueError(f"invalid FHIRPath: {exc}") from None
        return value


RuleParams = Annotated[
    CopyFieldParams
    | ValueMapParams
    | CodeTranslationParams
    | UnitConversionParams
    | DatetimeNormaliseParams
    | StringNormaliseParams
    | DefaultValueParams
    | RedactParams
    | ComputedParams,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[RuleParams] = TypeAdapter(RuleParams)


class InvalidRule(ValueError):
    """A rule's parameters were refused; `errors` lists (location, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in errors))


def parse_params(kind: TransformKind | str, params: dict[str, Any]) -> RuleParams:
    """Validate stored parameters for `kind`; raises `InvalidRule` with a clear message."""
    if not isinstance(params, dict):
        raise InvalidRule([("params", "must be an object")])
    if kind not in TransformKind._value2member_map_:
        raise InvalidRule([("kind", f"unknown rule kind; one of {', '.join(TransformKind)}")])
    try:
        return _ADAPTER.validate_python({**params, "kind": kind})
    except ValidationError as exc:
        raise InvalidRule([_describe(err) for err in exc.errors()]) from None


def _describe(err: Any) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"][1:])  # drop the union tag
    return loc, err["msg"].removeprefix("Value error, ")


def dump_params(params: RuleParams) -> dict[str, Any]:
    """The JSON stored in `TransformationRule.params` (the kind lives in its own column)."""
    return params.model_dump(mode="json", exclude={"kind"})
