"""UCUM unit conversion from a factor table kept as data.

A conversion is affine: `to = from * scale + offset` (offset is non-zero only for
temperatures). Mass <-> molar conversions depend on the analyte, so they are keyed by its
LOINC code as well. Every entry also converts the other way by inverting it.
"""

from __future__ import annotations

from dataclasses import dataclass

UCUM_SYSTEM = "http://unitsofmeasure.org"

# Common spellings EHRs send in place of the UCUM code.
ALIASES: dict[str, str] = {
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "in": "[in_i]",
    "inch": "[in_i]",
    "degF": "[degF]",
    "°F": "[degF]",
    "°C": "Cel",
    "degC": "Cel",
    "mg/dl": "mg/dL",
    "g/dl": "g/dL",
    "mmol/l": "mmol/L",
}

# (from, to): (scale, offset), for any analyte.
GENERIC: dict[tuple[str, str], tuple[float, float]] = {
    ("[lb_av]", "kg"): (0.45359237, 0.0),
    ("[lb_av]", "g"): (453.59237, 0.0),
    ("kg", "g"): (1000.0, 0.0),
    ("[oz_av]", "g"): (28.349523125, 0.0),
    ("[in_i]", "cm"): (2.54, 0.0),
    ("[in_i]", "m"): (0.0254, 0.0),
    ("cm", "m"): (0.01, 0.0),
    ("[ft_i]", "cm"): (30.48, 0.0),
    ("[degF]", "Cel"): (5.0 / 9.0, -32.0 * 5.0 / 9.0),
    ("K", "Cel"): (1.0, -273.15),
    ("g/dL", "g/L"): (10.0, 0.0),
    ("mg/dL", "mg/L"): (10.0, 0.0),
    ("mg", "g"): (0.001, 0.0),
    ("ug", "mg"): (0.001, 0.0),
    ("mL", "L"): (0.001, 0.0),
}

# Molar masses, as factors from mg/dL to mmol/L (or umol/L), by LOINC code of the analyte.
_GLUCOSE = 1.0 / 18.016
_CHOLESTEROL = 1.0 / 38.67
BY_ANALYTE: dict[tuple[str, str, str], tuple[float, float]] = {
    ("2345-7", "mg/dL", "mmol/L"): (_GLUCOSE, 0.0),  # glucose, serum or plasma
    ("2339-0", "mg/dL", "mmol/L"): (_GLUCOSE, 0.0),  # glucose, blood
    ("41653-7", "mg/dL", "mmol/L"): (_GLUCOSE, 0.0),  # glucose, capillary blood (glucometer)
    ("2093-3", "mg/dL", "mmol/L"): (_CHOLESTEROL, 0.0),  # cholesterol, total
    ("2085-9", "mg/dL", "mmol/L"): (_CHOLESTEROL, 0.0),  # HDL cholesterol
    ("13457-7", "mg/dL", "mmol/L"): (_CHOLESTEROL, 0.0),  # LDL cholesterol (calculated)
    ("2571-8", "mg/dL", "mmol/L"): (1.0 / 88.57, 0.0),  # triglycerides
    ("2160-0", "mg/dL", "umol/L"): (88.42, 0.0),  # creatinine
}


@dataclass(frozen=True, slots=True)
class Conversion:
    scale: float
    offset: float

    def __call__(self, value: float) -> float:
        return value * self.scale + self.offset


def _inverse(scale: float, offset: float) -> tuple[float, float]:
    return 1.0 / scale, -offset / scale


def _table() -> dict[tuple[str | None, str, str], Conversion]:
    table: dict[tuple[str | None, str, str], Conversion] = {}
    for (src, dst), (scale, offset) in GENERIC.items():
        table[(None, src, dst)] = Conversion(scale, offset)
        table[(None, dst, src)] = Conversion(*_inverse(scale, offset))
    for (code, src, dst), (scale, offset) in BY_ANALYTE.items():
        table[(code, src, dst)] = Conversion(scale, offset)
        table[(code, dst, src)] = Conversion(*_inverse(scale, offset))
    return table


TABLE = _table()
KNOWN_UNITS = frozenset(unit for _, src, dst in TABLE for unit in (src, dst))


def canonical(unit: str) -> str:
    """The UCUM code for a unit string (aliases such as `lb` resolved)."""
    return ALIASES.get(unit, unit)


def find(src: str, dst: str, analytes: tuple[str, ...] = ()) -> Conversion | None:
    """The conversion from `src` to `dst`, trying analyte-specific factors first."""
    src, dst = canonical(src), canonical(dst)
    if src == dst:
        return Conversion(1.0, 0.0)
    for code in analytes:
        conversion = TABLE.get((code, src, dst))
        if conversion is not None:
            return conversion
    return TABLE.get((None, src, dst))
