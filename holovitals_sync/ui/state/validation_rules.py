"""Custom validation rules of the open connection: list, add, enable/disable, delete, check.

Roles as in `api/validation_rules.py`: viewers read, operators run the check, admins change
rules. Every handler resolves the session again before it reads or changes anything.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from ...db import session_scope
from ...models import ErrorSeverity, Role
from ...services import labels
from ...services import validation_rules as vr
from ...services.audit import Actor
from ..views.rule_forms import parse_sample
from .rule_list import RuleListActions
from .session import acting, reads, requires

Event = rx.event.EventSpec | list[rx.event.EventSpec] | None
SAMPLE = (
    '{\n  "resourceType": "Observation",\n  "id": "sample-1",\n  "status": "final",\n'
    '  "valueQuantity": {"value": 72}\n}'
)
EMPTY_FORM = {"check": "range", "name": "", "resource_type": "Observation", "path": "",
              "min": "", "max": "", "pattern": "", "expression": "",
              "severity": ErrorSeverity.ERROR.value}  # fmt: skip


def _rules(connection_id: int) -> list[dict[str, str]]:
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


class ValidationRulesState(RuleListActions, rx.State):
    """The open connection's custom rules, in the order they run."""

    checks: list[str] = vr.CHECKS
    severities: list[str] = [s.value for s in ErrorSeverity]
    form_open: bool = False
    form_values: dict[str, str] = dict(EMPTY_FORM)
    form_errors: dict[str, str] = {}
    sample: str = SAMPLE
    sample_error: str = ""
    check_lines: list[dict[str, str]] = []
    check_done: bool = False

    async def _reload(self) -> None:
        self.rules = await asyncio.to_thread(_rules, self.connection_id)

    def _forget(self) -> None:
        """Refused (signed out): the rules shown do not stay in the tab's state."""
        self.rules = []

    @rx.event
    @reads(on_refusal=_forget)
    async def load_for(self, connection_id: int) -> Event:
        if connection_id != self.connection_id:
            self.check_done, self.check_lines, self.sample_error = False, [], ""
            self.form_open, self.form_errors = False, {}
        self.connection_id = connection_id
        if connection_id:
            await self._reload()
        else:
            self.rules = []
        return None

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

    @rx.event
    @requires(Role.ADMIN)
    async def save_rule(self) -> Event:
        if not self.connection_id:
            return None
        errors = await asyncio.to_thread(_add, self.connection_id, dict(self.form_values),
                                         acting().actor)  # fmt: skip
        self.form_errors = {k: labels.sentence(v, end="") for k, v in errors.items()}
        if errors:
            return None
        self.form_open = False
        await self._reload()
        return rx.toast.success("Validation rule saved.")

    # -- list actions --------------------------------------------------------------------

    def _apply_change(self, rule_id: str, action: str, actor: Actor) -> str:
        return _change(self.connection_id, rule_id, action, actor)

    # -- check on a sample ---------------------------------------------------------------

    @rx.event
    def set_sample(self, value: str) -> None:
        self.sample, self.sample_error = value[:200_000], ""

    @rx.event
    @reads(Role.OPERATOR)
    async def run_check(self) -> Event:
        if not self.connection_id:
            return None
        sample, problem = parse_sample(self.sample)
        if sample is None:
            self.sample_error, self.check_done = problem, False
            return None
        try:
            self.check_lines = await asyncio.to_thread(_check, self.connection_id, sample)
        except LookupError:
            return rx.toast.error("This connection no longer exists.")
        self.check_done, self.sample_error = True, ""
        return None
