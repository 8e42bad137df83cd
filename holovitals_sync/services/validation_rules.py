"""A connection's custom validation rules as an administrator manages them.

The rules live in `EHRConnection.validation_rules` (a JSON list, run in list order by the
sync loop, see `orchestration.pipeline.custom_rules`). Every rule is validated here before
anything is saved (regular expression, FHIRPath, element path, bounds), every change is
written to the audit log in the caller's transaction, and a refused change leaves the
stored list as it was. Rules are addressed by their `id`, given when they are added.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from ..models import EHRConnection
from ..models.types import utcnow
from . import audit
from .validation.custom import (
    CustomRule,
    CustomValidator,
    PatternCheck,
    RangeCheck,
    dump_rule,
    parse_rule,
    rule_errors,
)
from .validation.issues import ValidationIssue
from .validation.revalidate import enqueue_after_commit

TARGET = "validation_rule"
MAX_RULES = 200  # per connection: each one runs on every synced resource
# Fields every check has; on a change of `check` only these carry over.
COMMON = ("id", "name", "resource_type", "severity", "enabled")


class InvalidValidationRule(ValueError):
    """A rule (or a change) was refused; `errors` lists (field, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in errors))


class ConnectionNotFound(LookupError):
    """No connection with this id."""


class ValidationRuleNotFound(LookupError):
    """The connection has no rule with this id."""


def _parse(data: dict[str, Any] | BaseModel) -> CustomRule:
    raw = data.model_dump(exclude_unset=True) if isinstance(data, BaseModel) else data
    if not isinstance(raw, dict):
        raise InvalidValidationRule([("rule", "must be an object")])
    try:
        return parse_rule(dict(raw))
    except ValidationError as exc:
        raise InvalidValidationRule(rule_errors(exc)) from None


def _with_ids(rules: list[CustomRule]) -> list[CustomRule]:
    """Rules stored without an id (written before ids existed) get a stable one by position."""
    taken = {r.id for r in rules if r.id}
    out = []
    for index, rule in enumerate(rules, start=1):
        if rule.id is None:
            candidate = f"rule-{index}"
            while candidate in taken:
                candidate += "x"
            taken.add(candidate)
            rule = rule.model_copy(update={"id": candidate})
        out.append(rule)
    return out


def rule_view(rule: CustomRule) -> dict[str, Any]:
    """A rule as the API returns it (every field, `check` first)."""
    return dump_rule(rule)


class ValidationRuleService:
    """CRUD, enable/disable, reorder and a check run; the caller owns the session and commits."""

    def __init__(self, session: Session, *, actor: audit.Actor | None = None) -> None:
        self.session = session
        self.actor = actor or audit.Actor.system()

    # -- reading -------------------------------------------------------------------------

    def list_rules(self, connection_id: int) -> list[CustomRule]:
        """The connection's rules in the order they run (disabled ones included)."""
        return self._rules(self._connection(connection_id))

    def get(self, connection_id: int, rule_id: str) -> CustomRule:
        rules = self.list_rules(connection_id)
        return rules[self._index(rules, rule_id)]

    # -- changing (each audited) ---------------------------------------------------------

    def add(
        self, connection_id: int, data: dict[str, Any] | BaseModel, *, position: int | None = None
    ) -> CustomRule:
        """Validate and append a rule (or insert it at `position`); it gets an id if it has none.

        Raises:
            InvalidValidationRule: the rule is refused (field and reason in `errors`).
            ConnectionNotFound: no such connection.
        """
        rule = _parse(data)
        row = self._connection(connection_id, lock=True)
        rules = self._rules(row)
        if len(rules) >= MAX_RULES:
            raise InvalidValidationRule([("rules", f"at most {MAX_RULES} rules a connection")])
        if rule.id is None:
            rule = rule.model_copy(update={"id": uuid.uuid4().hex[:12]})
        elif any(r.id == rule.id for r in rules):
            raise InvalidValidationRule([("id", "another rule of this connection has this id")])
        self._unique_name(rules, rule)
        index = len(rules) if position is None else max(0, min(position, len(rules)))
        rules.insert(index, rule)
        self._save(row, rules, revalidate=[rule.resource_type])
        self._audit("create", row, rule, {"position": index})
        return rule

    def replace(
        self, connection_id: int, rule_id: str, data: dict[str, Any] | BaseModel
    ) -> CustomRule:
        """Put a whole new rule in the place of `rule_id` (it keeps that id and position)."""
        raw = data.model_dump(exclude_unset=True) if isinstance(data, BaseModel) else data
        if not isinstance(raw, dict):
            raise InvalidValidationRule([("rule", "must be an object")])
        if raw.get("id") not in (None, rule_id):
            raise InvalidValidationRule([("id", "a rule's id does not change")])
        rule = _parse({**raw, "id": rule_id})
        return self._put(connection_id, rule_id, rule, "update", sorted(raw))

    def update(self, connection_id: int, rule_id: str, changes: dict[str, Any]) -> CustomRule:
        """Change some fields of a rule; the result is validated as a whole.

        A change of `check` keeps only the fields every check has (name, resource type,
        severity, enabled): the new check's own fields must come with it.
        """
        if "id" in changes and changes["id"] != rule_id:
            raise InvalidValidationRule([("id", "a rule's id does not change")])
        row = self._connection(connection_id, lock=True)
        rules = self._rules(row)
        current = dump_rule(rules[self._index(rules, rule_id)])
        if changes.get("check", current["check"]) != current["check"]:
            current = {k: v for k, v in current.items() if k in COMMON}
        rule = _parse({**current, **changes, "id": rule_id})
        verb = "update"
        if set(changes) == {"enabled"}:
            verb = "enable" if changes["enabled"] else "disable"
        return self._put(connection_id, rule_id, rule, verb, sorted(changes))

    def set_enabled(self, connection_id: int, rule_id: str, enabled: bool) -> CustomRule:
        """Turn a rule on or off; a disabled rule stays configured but is not run."""
        return self.update(connection_id, rule_id, {"enabled": enabled})

    def delete(self, connection_id: int, rule_id: str) -> None:
        row = self._connection(connection_id, lock=True)
        rules = self._rules(row)
        rule = rules.pop(self._index(rules, rule_id))
        self._save(row, rules, revalidate=[rule.resource_type])
        self._audit("delete", row, rule, {})

    def reorder(self, connection_id: int, rule_ids: Sequence[str]) -> list[CustomRule]:
        """Run the rules in this order; `rule_ids` must list every rule of the connection once."""
        row = self._connection(connection_id, lock=True)
        rules = self._rules(row)
        if len(set(rule_ids)) != len(rule_ids):
            raise InvalidValidationRule([("rule_ids", "a rule id is listed twice")])
        by_id = {r.id: r for r in rules}
        if set(rule_ids) != set(by_id):
            raise InvalidValidationRule([("rule_ids", "list every rule of this connection once")])
        ordered = [by_id[rule_id] for rule_id in rule_ids]
        self._save(row, ordered)
        audit.record(self.session, actor=self.actor, action=f"{TARGET}.reorder",
                     target_type="connection", target_id=connection_id,
                     details={"rule_ids": list(rule_ids)})  # fmt: skip
        return ordered

    # -- trying ----------------------------------------------------------------------------

    def check(self, connection_id: int, resource: Any) -> list[ValidationIssue]:
        """Run the connection's enabled rules on a sample resource; nothing is saved."""
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidValidationRule(
                [("resource", "one FHIR resource: a JSON object with a resourceType")]
            )
        return CustomValidator(self.list_rules(connection_id)).check(resource)

    # -- helpers ---------------------------------------------------------------------------

    def _connection(self, connection_id: int, *, lock: bool = False) -> EHRConnection:
        # Writers lock the row (PostgreSQL): two admins editing the list at once must not
        # lose one another's change to a read-modify-write race.
        row = self.session.get(EHRConnection, connection_id, with_for_update=lock or None)
        if row is None:
            raise ConnectionNotFound(f"no connection {connection_id}")
        return row

    @staticmethod
    def _rules(row: EHRConnection) -> list[CustomRule]:
        return _with_ids([parse_rule(raw) for raw in row.validation_rules or []])

    @staticmethod
    def _index(rules: list[CustomRule], rule_id: str) -> int:
        for index, rule in enumerate(rules):
            if rule.id == rule_id:
                return index
        raise ValidationRuleNotFound(f"no validation rule {rule_id!r} on this connection")

    @staticmethod
    def _unique_name(rules: list[CustomRule], rule: CustomRule) -> None:
        if any(r.name.casefold() == rule.name.casefold() and r.id != rule.id for r in rules):
            raise InvalidValidationRule([("name", "another rule of this connection has this name")])

    def _put(
        self, connection_id: int, rule_id: str, rule: CustomRule, verb: str, fields: list[str]
    ) -> CustomRule:
        row = self._connection(connection_id, lock=True)
        rules = self._rules(row)
        index = self._index(rules, rule_id)
        self._unique_name(rules, rule)
        before = rules[index]
        rules[index] = rule
        self._save(row, rules, revalidate=[before.resource_type, rule.resource_type])
        self._audit(verb, row, rule, {"fields": fields})
        return rule

    def _save(
        self, row: EHRConnection, rules: list[CustomRule], revalidate: Iterable[str] = ()
    ) -> None:
        """Store the list; `revalidate` names the resource types whose stored records the
        change may flag or clear (they are validated again once this commits)."""
        # A new list object: the JSON column does not track changes made in place.
        row.validation_rules = [dump_rule(r) for r in rules]
        row.updated_at = utcnow()
        self.session.add(row)
        self.session.flush()
        types = list(revalidate)
        if types:
            enqueue_after_commit(self.session, int(row.id), types)

    def _audit(
        self, verb: str, row: EHRConnection, rule: CustomRule, details: dict[str, Any]
    ) -> None:
        # Ids and settings only: a rule's name and check, never a resource's values.
        details = {
            "rule_id": rule.id,
            "check": rule.check,
            "name": rule.name,
            "resource_type": rule.resource_type,
            **details,
        }
        audit.record(
            self.session,
            actor=self.actor,
            action=f"{TARGET}.{verb}",
            target_type="connection",
            target_id=row.id,
            details=details,
        )


# -- the dashboard's form ----------------------------------------------------------------

CHECKS = ["range", "pattern", "fhirpath"]
# The fields each check's form shows (besides name, resource type and severity).
CHECK_FIELDS = {
    "range": ("path", "min", "max"),
    "pattern": ("path", "pattern"),
    "fhirpath": ("expression",),
}


def _number(text: str, name: str, errors: dict[str, str]) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        errors[name] = "a number, or blank for no bound"
        return None


def form_rule(values: dict[str, str]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The form's strings as a rule to add, or messages per field (nothing is saved here)."""
    check = values.get("check", "")
    if check not in CHECK_FIELDS:
        return None, {"check": f"choose a check: {', '.join(CHECKS)}"}
    errors: dict[str, str] = {}
    data: dict[str, Any] = {
        "check": check, "name": values.get("name", "").strip(),
        "resource_type": values.get("resource_type", "").strip() or "*",
        "severity": values.get("severity") or "error",
    }  # fmt: skip
    for name in CHECK_FIELDS[check]:
        if name in ("min", "max"):
            data[name] = _number(values.get(name, ""), name, errors)
        else:
            data[name] = values.get(name, "").strip()
    if errors:
        return None, errors
    try:
        _parse(data)
    except InvalidValidationRule as exc:
        return None, field_errors(exc)
    return data, {}


def field_errors(exc: InvalidValidationRule) -> dict[str, str]:
    """The first message for each field, as the form shows them."""
    out: dict[str, str] = {}
    for field, message in exc.errors:
        out.setdefault(field.split(".")[0], message[:300])
    return out


def rule_row(rule: CustomRule) -> dict[str, str]:
    """A rule as the dashboard lists it (strings only); `what` sums up its check."""
    if isinstance(rule, RangeCheck):
        low = "" if rule.min is None else f"{rule.min:g}"
        high = "" if rule.max is None else f"{rule.max:g}"
        what = f"{rule.path} in [{low or '-inf'}, {high or 'inf'}]"
    elif isinstance(rule, PatternCheck):
        what = f"{rule.path} matches {rule.pattern}"
    else:
        what = rule.expression
    return {"id": rule.id or "", "name": rule.name, "check": rule.check, "what": what,
            "resource_type": rule.resource_type, "severity": rule.severity.value,
            "enabled": "yes" if rule.enabled else ""}  # fmt: skip
