"""Transformation rules of the open connection: list, edit, enable, reorder, delete, dry run.

Roles as in `api/rules.py`: viewers read, operators dry-run, admins change rules. Loading,
saving, the list's actions and the sample are shared with the validation rules
(`rule_editor.py`); here are the transformation service's calls, the editor dialog and what
only a dry run has: a direction, and the resource before and after.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, ClassVar

import reflex as rx

from ...db import session_scope
from ...models import Role, RuleDirection
from ...services.audit import Actor
from ...services.transformation import DataTransformationService, InvalidRule, RuleNotFound
from ..views import rule_forms
from .rule_editor import Event, RuleEditor
from .session import reads, requires

SAMPLE = '{\n  "resourceType": "Patient",\n  "id": "sample-1",\n  "gender": "F"\n}'


def _rules(connection_id: int) -> list[dict[str, str]]:
    with session_scope() as db:
        service = DataTransformationService(db)
        return [rule_forms.rule_row(r) for r in service.list_rules(connection_id=connection_id)]


def _save(connection_id: int, rule_id: int, values: dict[str, str], actor: Actor) -> dict[str, str]:
    parsed, errors = rule_forms.parse_rule(values, connection_id=connection_id,
                                           editing=bool(rule_id))  # fmt: skip
    if parsed is None:
        return errors
    with session_scope() as db:
        service = DataTransformationService(db, actor=actor)
        try:
            if rule_id:
                _own(service, connection_id, rule_id)
                service.update(rule_id, parsed)  # type: ignore[arg-type]
            else:
                service.create(parsed)  # type: ignore[arg-type]
        except InvalidRule as exc:
            return {"params": str(exc)[:500]}
        except LookupError:
            return {"kind": "this rule or connection no longer exists"}
    return {}


def _own(service: DataTransformationService, connection_id: int, rule_id: int) -> None:
    """Only the connection's own rules change here (global ones are shared by every one)."""
    if service.get(rule_id).connection_id != connection_id:
        raise RuleNotFound(f"rule {rule_id} is not this connection's")


def _change(connection_id: int, rule_id: int, action: str, actor: Actor) -> str:
    """Enable, disable, move up/down or delete one rule; "" or why not."""
    with session_scope() as db:
        service = DataTransformationService(db, actor=actor)
        try:
            _own(service, connection_id, rule_id)
            if action in ("enable", "disable"):
                service.set_enabled(rule_id, action == "enable")
            elif action == "delete":
                service.delete(rule_id)
            else:
                ids = [r.id for r in service.list_rules(connection_id=connection_id,
                                                        include_global=False)]  # fmt: skip
                order = rule_forms.moved(ids, rule_id, -1 if action == "up" else 1)
                if order is not None:
                    service.reorder(connection_id=connection_id, rule_ids=order)
        except RuleNotFound:
            return "this rule is not one of this connection's own"
    return ""


def _dry_run(connection_id: int, sample: dict[str, Any], direction: str) -> dict[str, Any]:
    with session_scope() as db:
        result = DataTransformationService(db).dry_run(
            connection_id, sample, direction=RuleDirection(direction)
        )
        return rule_forms.dry_run_view(result)


class RulesState(RuleEditor, rx.State):
    """The open connection's rules (its own and the global ones, in run order)."""

    kinds: list[str] = rule_forms.kind_options()
    directions: list[str] = [d.value for d in RuleDirection]
    editor_open: bool = False
    editor_id: int = 0  # 0: a new rule
    editor_values: dict[str, str] = {}
    editor_errors: dict[str, str] = {}
    sample: str = SAMPLE
    dry_direction: str = RuleDirection.INBOUND.value
    dry_before: str = ""
    dry_after: str = ""
    _SAVED: ClassVar[str] = "Rule saved."

    async def _reload(self) -> None:
        self.rules = await asyncio.to_thread(_rules, self.connection_id)

    def _apply_change(self, rule_id: str, action: str, actor: Actor) -> str:
        return _change(self.connection_id, int(rule_id), action, actor)

    # -- editor ------------------------------------------------------------------------

    @rx.event
    @requires(Role.ADMIN)
    async def open_new(self) -> Event:
        kind = self.kinds[1]  # value_map: the most common first rule
        self.editor_id, self.editor_errors = 0, {}
        self.editor_values = {"kind": kind, "params": rule_forms.param_template(kind),
                              "resource_type": "Patient", "direction": "inbound",
                              "description": ""}  # fmt: skip
        self.editor_open = True
        return None

    @rx.event
    @requires(Role.ADMIN)
    async def open_edit(self, rule_id: str) -> Event:
        found = next((r for r in self.rules if r["id"] == rule_id), None)
        if found is None or found["scope"] != "connection":
            return rx.toast.error("Only this connection's own rules are edited here.")
        self.editor_id, self.editor_errors = int(rule_id), {}
        self.editor_values = {k: found[k] for k in ("kind", "params", "resource_type",
                                                     "direction", "description")}  # fmt: skip
        self.editor_open = True
        return None

    @rx.event
    def set_editor_value(self, name: str, value: str) -> None:
        values = {**self.editor_values, name: value[:20_000]}
        old_kind = self.editor_values.get("kind", "")
        if name == "kind" and self.editor_values.get("params") in (
            "",
            rule_forms.param_template(old_kind),
        ):
            values["params"] = rule_forms.param_template(value)  # untouched: new example
        self.editor_values = values
        self.editor_errors = {k: v for k, v in self.editor_errors.items() if k != name}

    @rx.event
    def set_editor_open(self, is_open: bool) -> None:
        self.editor_open = is_open

    def _saving(self, actor: Actor) -> Callable[[], dict[str, str]]:
        return functools.partial(
            _save, self.connection_id, self.editor_id, dict(self.editor_values), actor
        )

    def _show_saved(self, errors: dict[str, str]) -> None:
        self.editor_errors = errors
        if not errors:
            self.editor_open = False

    # -- dry run -------------------------------------------------------------------------

    @rx.event
    def set_dry_direction(self, value: str) -> None:
        if value in self.directions:
            self.dry_direction = value

    @rx.event
    @reads(Role.OPERATOR)
    async def dry_run(self) -> Event:
        sample = self._sample_to_run()
        if sample is None:
            return None
        view = await asyncio.to_thread(_dry_run, self.connection_id, sample, self.dry_direction)
        self.dry_before, self.dry_after = view["before"], view["after"]
        self._show_lines(view["lines"])
        return None
