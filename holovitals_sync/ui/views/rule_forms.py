"""The transformation-rule editor and dry run as the dashboard needs them.

Rule kinds and their parameters come from the typed models in `transformation.rules`; the
editor starts from a template built from those models, and messages are keyed by field
("kind", "params", "resource_type", ...) so the UI shows them where they belong.
"""

from __future__ import annotations

import typing
from typing import Any

import orjson
from pydantic import ValidationError

from ...models import RuleDirection, TransformationRule, TransformKind
from ...services import labels
from ...services.transformation import DryRun, RuleIn, RulePatch
from ...services.transformation.rules import RuleParams

# A readable example for the parameters every kind requires (the rest keep their defaults).
_EXAMPLES: dict[str, Any] = {
    "source": "identifier[0].value",
    "target": "identifier[1].value",
    "path": "gender",
    "paths": ["name[0].family"],
    "mapping": {"M": "male", "F": "female"},
    "source_system": "http://loinc.org",
    "target_system": "http://snomed.info/sct",
    "entries": [{"source": "1234-5", "target": "67890"}],
    "to_unit": "mg/dL",
    "value": "unknown",
    "expression": "name.first().family",
    "case": "upper",
}


def _models() -> dict[str, type]:
    union = typing.get_args(typing.get_args(RuleParams)[0])
    return {model.model_fields["kind"].default.value: model for model in union}


def param_template(kind: str) -> str:
    """Pretty JSON of the kind's required parameters, with example values."""
    model = _models().get(kind)
    if model is None:
        return "{}"
    params = {
        name: _EXAMPLES.get(name, "")
        for name, info in model.model_fields.items()
        if name != "kind" and (info.is_required() or name in ("case",))
    }
    return orjson.dumps(params, option=orjson.OPT_INDENT_2).decode()


def kind_options() -> list[str]:
    return [kind.value for kind in TransformKind]


def _parse_json(text: str, name: str, errors: dict[str, str]) -> Any:
    try:
        return orjson.loads(text or "{}")
    except orjson.JSONDecodeError as exc:
        errors[name] = f"not valid JSON: {exc}"[:200]
        return None


def parse_rule(
    values: dict[str, str], *, connection_id: int | None, editing: bool
) -> tuple[RuleIn | RulePatch | None, dict[str, str]]:
    """The editor's strings as a new rule or a patch, or messages per field."""
    errors: dict[str, str] = {}
    params = _parse_json(values.get("params", ""), "params", errors)
    if params is not None and not isinstance(params, dict):
        errors["params"] = "must be a JSON object"
    if errors:
        return None, errors
    data = {"kind": values.get("kind", ""), "params": params,
            "resource_type": values.get("resource_type", "").strip() or "*",
            "direction": values.get("direction") or RuleDirection.INBOUND.value,
            "description": values.get("description", "").strip() or None}  # fmt: skip
    try:
        if editing:
            return RulePatch(**data), {}
        return RuleIn(connection_id=connection_id, **data), {}
    except ValidationError as exc:
        for error in exc.errors():
            errors.setdefault(
                str(error["loc"][0]) if error["loc"] else "params", labels.field_message(error)
            )
        return None, errors


def rule_row(row: TransformationRule) -> dict[str, str]:
    """A rule as the list shows it; `scope` tells a global rule from the connection's own."""
    return {
        "id": str(row.id), "kind": row.kind.value, "resource_type": row.resource_type,
        "direction": row.direction.value, "position": str(row.position),
        "enabled": "yes" if row.enabled else "",
        "scope": "global" if row.connection_id is None else "connection",
        "description": row.description or "",
        "params": orjson.dumps(row.params, option=orjson.OPT_SORT_KEYS).decode(),
    }  # fmt: skip


def moved(ids: list[int], rule_id: int, step: int) -> list[int] | None:
    """`ids` with `rule_id` moved one place up (-1) or down (+1); None at either end."""
    index = ids.index(rule_id)
    other = index + step
    if not 0 <= other < len(ids):
        return None
    reordered = list(ids)
    reordered[index], reordered[other] = reordered[other], reordered[index]
    return reordered


def parse_sample(text: str) -> tuple[dict[str, Any] | None, str]:
    """The pasted sample resource, or why it is refused."""
    errors: dict[str, str] = {}
    sample = _parse_json(text, "sample", errors)
    if errors:
        return None, errors["sample"]
    if not isinstance(sample, dict) or not isinstance(sample.get("resourceType"), str):
        return None, "paste one FHIR resource: a JSON object with a resourceType"
    return sample, ""


def dry_run_view(result: DryRun) -> dict[str, Any]:
    """Before and after as pretty JSON, and one line per rule that changed or failed."""
    pretty = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    lines = [{"rule_id": str(c["rule_id"]), "kind": c["kind"], "what": ", ".join(c["paths"]),
              "ok": "yes"} for c in result.changes]  # fmt: skip
    lines += [
        {"rule_id": str(f["rule_id"]), "kind": f["kind"], "what": f["message"], "ok": ""}
        for f in result.failures
    ]
    return {
        "before": orjson.dumps(result.before, option=pretty).decode(),
        "after": orjson.dumps(result.after, option=pretty).decode(),
        "lines": lines,
    }
