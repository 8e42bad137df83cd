"""Custom validation rules of the open connection: list, add, enable/disable, delete, check.

Roles as in `api/validation_rules.py`: viewers read, operators run the check, admins change
rules. Every handler resolves the session again before it reads or changes anything.
Loading, saving, the list's actions and the sample are shared with the transformation rules
(`rule_editor.py`); here are the validation service's calls and the add form's fields.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import reflex as rx

from ...db import session_scope
from ...models import ErrorSeverity, Role
from ...services import labels
from ...services import validation_rules as vr
from ...services.audit import Actor
from .rule_editor import Event, RuleEditor
from .session import reads, requires

SAMPLE = (
    '{\n  "resourceType": "Observation",\n  "id": "sample-1",\n  "status": "final",\n'
    '  "valueQuantity": {"value": 72}\n}'
)
EMPTY_FORM = {"check": "range", "name": "", "resource_type": "Observation", "path": "",
              "min": "", "max": "", "pattern": "", "expression": "",
              "severity": ErrorSeverity.ERROR.value}  # fmt: skip


def _rules(connection_id: int) -> list[dict[str, str]]:
    if not connection_id:  # no connection open: nothing to read
        return []
    with session_scope() as db:
        try:
            return [vr.rule_row(r) for r in vr.ValidationRuleService(db).list_rules(connection_id)]
        except vr.ConnectionNotFound:
            return []


def _add(connection_id: int, values: dict[str, str], actor: Actor) -> dict[str, str]:
    data, errors = vr.form_rule(values)
    if data is None:
        return errors
    with session_scope() as db:
        try:
            vr.ValidationRuleService(db, actor=actor).add(connection_id, data)
        except vr.InvalidValidationRule as exc:
            return vr.field_errors(exc)
        except vr.ConnectionNotFound:
            return {"check": "this connection no longer exists"}
    return {}


def _change(connection_id: int, rule_id: str, action: str, actor: Actor) -> str:
    """Enable, disable, move or delete one rule; "" or why not."""
    with session_scope() as db:
        service = vr.ValidationRuleService(db, actor=actor)
        try:
            if action in ("enable", "disable"):
                service.set_enabled(connection_id, rule_id, action == "enable")
            elif action == "delete":
                service.delete(connection_id, rule_id)
            else:
                ids = [r.id or "" for r in service.list_rules(connection_id)]
                index = ids.index(rule_id) if rule_id in ids else -1
                other = index + (-1 if action == "up" else 1)
                if index < 0 or not 0 <= other < len(ids):
                    return ""
                ids[index], ids[other] = ids[other], ids[index]
                service.reorder(connection_id, ids)
        except LookupError:
            return "this rule or connection no longer exists"
        except vr.InvalidValidationRule as exc:
            return str(exc)[:300]
    return ""


def _check(connection_id: int, sample: dict[str, Any]) -> list[dict[str, str]]:
    with session_scope() as db:
        issues = vr.ValidationRuleService(db).check(connection_id, sample)
    return [
        {"path": i.path or "", "message": i.message, "severity": i.severity.value} for i in issues
    ]


class ValidationRulesState(RuleEditor, rx.State):
    """The open connection's custom rules, in the order they run."""

    checks: list[str] = vr.CHECKS
    severities: list[str] = [s.value for s in ErrorSeverity]
    form_open: bool = False
    form_values: dict[str, str] = dict(EMPTY_FORM)
    form_errors: dict[str, str] = {}
    sample: str = SAMPLE
    _SAVED: ClassVar[str] = "Validation rule saved."

    async def _reload(self) -> None:
        self.rules = await asyncio.to_thread(_rules, self.connection_id)

    def _apply_change(self, rule_id: str, action: str, actor: Actor) -> str:
        return _change(self.connection_id, rule_id, action, actor)

    def _leave_connection(self) -> None:
        """The form was for the connection left: it closes, its messages go."""
        self.form_open, self.form_errors = False, {}

    # -- the add form ------------------------------------------------------------------

    @rx.event
    @requires(Role.ADMIN)
    async def open_form(self) -> Event:
        self.form_values, self.form_errors, self.form_open = dict(EMPTY_FORM), {}, True
        return None

    @rx.event
    def close_form(self) -> None:
        self.form_open, self.form_errors = False, {}

    @rx.event
    def set_form_value(self, name: str, value: str) -> None:
        if name not in EMPTY_FORM:
            return
        self.form_values = {**self.form_values, name: value[:2000]}
        # A changed check shows other fields: their old messages no longer apply.
        drop = set(self.form_errors) if name == "check" else {name}
        self.form_errors = {k: v for k, v in self.form_errors.items() if k not in drop}

    def _saving(self, actor: Actor) -> Callable[[], dict[str, str]]:
        return functools.partial(_add, self.connection_id, dict(self.form_values), actor)

    def _show_saved(self, errors: dict[str, str]) -> None:
        self.form_errors = {k: labels.sentence(v, end="") for k, v in errors.items()}
        if not errors:
            self.form_open = False

    # -- check on a sample ---------------------------------------------------------------

    @rx.event
    @reads(Role.OPERATOR)
    async def run_check(self) -> Event:
        sample = self._sample_to_run()
        if sample is None:
            return None
        try:
            lines = await asyncio.to_thread(_check, self.connection_id, sample)
        except LookupError:
            return rx.toast.error("This connection no longer exists.")
        self._show_lines(lines)
        return None
