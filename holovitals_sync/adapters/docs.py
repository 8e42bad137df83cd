"""Generate `docs/ehr-support.md` from the vendor profiles.

    python -m holovitals_sync.adapters.docs            # write docs/ehr-support.md
    python -m holovitals_sync.adapters.docs --check    # exit 1 when the file is stale

Every cell is "value [sources]"; "default" marks the standard behaviour taken where the
vendor publishes nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from holovitals_sync.adapters.plan import incremental_method
from holovitals_sync.adapters.profile import VendorProfile
from holovitals_sync.adapters.registry import PROFILES

log = logging.getLogger(__name__)
DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "ehr-support.md"
COLUMNS = (
    "epic",
    "oracle_health",
    "meditech",
    "veradigm",
    "nextgen",
    "nextgen_office",
    "athenahealth",
    "eclinicalworks",
    "generic",
)


def _join(values: object) -> str:
    items = [str(getattr(v, "value", v)) for v in values]  # type: ignore[attr-defined]
    return ", ".join(items) if items else "none"


def _writes(p: VendorProfile) -> str:
    if not p.writes:
        return "read-only" if p.name != "generic" else "as the server declares"
    return "; ".join(f"{t} {'+'.join(sorted(ops))}" for t, ops in sorted(p.writes.items()))


def _required(p: VendorProfile) -> str:
    groups: dict[tuple[str, ...], list[str]] = {}
    for rtype, params in p.required_search_params.items():
        groups.setdefault(params, []).append(rtype)
    if not groups:
        return "none"
    return "; ".join(
        f"{'/'.join(ts) if len(ts) < 3 else 'clinical types'}: {' or '.join(ps)}"
        for ps, ts in groups.items()
    )


def _last_updated(p: VendorProfile) -> str:
    if p.last_updated_types is None:
        return "all types" if p.name != "generic" else "as the server declares"
    return _join(sorted(p.last_updated_types)) if p.last_updated_types else "none"


def _incremental(p: VendorProfile) -> str:
    methods = sorted({incremental_method(p, t) for t in p.resource_types})
    return " + ".join(methods)


def _export(p: VendorProfile) -> str:
    if not p.export_levels:
        return "none"
    group = f" (Group `{p.export_group_template}`)" if "group" in p.export_levels else ""
    return _join(p.export_levels) + group + ("; `_since`" if p.export_since else "")


def _opt(value: object, unit: str = "") -> str:
    return (
        "none"
        if value is None or value is False
        else ("yes" if value is True else f"{value}{unit}")
    )


# (row label, profile fields whose sources the cell cites, formatter)
ROWS: list[tuple[str, tuple[str, ...], Callable[[VendorProfile], str]]] = [
    ("base URL", ("base_url_template",), lambda p: f"`{p.base_url_template}`"),
    ("administrator fills in", ("admin_fields",), lambda p: _join(p.admin_fields)),
    ("token auth", ("auth_methods",), lambda p: _join(p.auth_methods)),
    ("assertion algorithms", ("signing_algs",), lambda p: _join(p.signing_algs)),
    ("JWKS URL registered", ("jwks_url_required",), lambda p: _opt(p.jwks_url_required)),
    ("scope style", ("scope_styles",), lambda p: _join(p.scope_styles)),
    (
        "extra search params",
        ("search_params",),
        lambda p: _join(f"`{k}={v}`" for k, v in p.search_params.items()),
    ),
    ("writes over FHIR", ("writes",), _writes),
    ("required search params", ("required_search_params",), _required),
    ("page size limit", ("max_page_size",), lambda p: _opt(p.max_page_size)),
    ("max matches per search", ("max_search_matches",), lambda p: _opt(p.max_search_matches)),
    (
        "over-large searches split by date",
        ("split_by_date",),
        lambda p: _join(f"{t} `{v}`" for t, v in sorted(p.split_by_date.items())),
    ),
    ("`$export`", ("export_levels", "export_since"), _export),
    (
        "full sync",
        ("export_levels", "export_for_full_sync", "required_search_params"),
        lambda p: p.full_sync_method,
    ),
    ("`Patient/$everything`", ("patient_everything",), lambda p: _opt(p.patient_everything)),
    ("`_lastUpdated`", ("last_updated_types",), _last_updated),
    ("incremental sync", ("last_updated_types", "incremental_fallback"), _incremental),
    ("versioning", ("versioning",), lambda p: p.versioning),
    ("change notification", ("notification",), lambda p: p.notification),
    ("requests/min per base URL", ("requests_per_minute",), lambda p: _opt(p.requests_per_minute)),
    (
        "token requests/min",
        ("token_requests_per_minute",),
        lambda p: _opt(p.token_requests_per_minute),
    ),
    ("ids repeat across pages", ("dedupe_ids",), lambda p: _opt(p.dedupe_ids)),
    ("paging", ("paging",), lambda p: p.paging),
]


def _cell(p: VendorProfile, fields: tuple[str, ...], fmt: Callable[[VendorProfile], str]) -> str:
    sources = sorted({s.strip() for f in fields for s in p.source(f).split(",")})
    cited = [s for s in sources if s != "default"] or ["default"]
    return f"{fmt(p)} [{','.join(cited)}]".replace("|", "\\|")


def render() -> str:
    """The whole Markdown document."""
    profiles = [PROFILES[name] for name in COLUMNS]
    lines = [
        "# EHR support matrix",
        "",
        "Generated from `holovitals_sync/adapters/*.py` profiles by",
        "`python -m holovitals_sync.adapters.docs`; do not edit by hand.",
        "Each cell cites its sources (codes as in [vendor-sources.md](vendor-sources.md):",
        "E = Epic, C = Oracle Health, M = MEDITECH, V = Veradigm, N = NextGen,",
        "A = athenahealth, W = eClinicalWorks, S = HL7 specs). `default` = nothing",
        "published: the standard behaviour is assumed.",
        "",
        "| capability | " + " | ".join(p.display_name for p in profiles) + " |",
        "| --- |" + " --- |" * len(profiles),
    ]
    for label, fields, fmt in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(p, fields, fmt) for p in profiles) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the document, or with --check report whether it is current."""
    parser = argparse.ArgumentParser(prog="holovitals_sync.adapters.docs")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--path", type=Path, default=DOC_PATH)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.path.exists() and args.path.read_text() == text
        if not current:
            log.error("%s is stale; run python -m holovitals_sync.adapters.docs", args.path)
        return 0 if current else 1
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(text)
    log.info("wrote %s", args.path)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main())
