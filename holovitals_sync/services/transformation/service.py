"""`DataTransformationService`: rule CRUD (audited), compiling and applying rules.

Rules of a connection are its own plus the global ones (connection_id None), for the
resource type or "*", enabled, in the run's direction or "both", ordered by position
(globals first on a tie, then by id).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ...models import EHRConnection, RuleDirection, TransformationRule
from ...models.types import utcnow
from .. import audit
from .compile import RuleBook, TransformResult, clone, compile_rules
from .rules import InvalidRule, dump_params, parse_params
from .schemas import DryRun, RuleIn, RulePatch

TARGET = "transformation_rule"


class RuleNotFound(LookupError):
    """No rule with this id (or not in the scope asked for)."""


class DataTransformationService:
    """Rules through services; the caller owns the session and commits."""

    def __init__(self, session: Session, *, actor: audit.Actor | None = None) -> None:
        self.session = session
        self.actor = actor or audit.Actor.system()

    # -- reading ---------------------------------------------------------------------

    def get(self, rule_id: int) -> TransformationRule:
        row = self.session.get(TransformationRule, rule_id)
        if row is None:
            raise RuleNotFound(f"no transformation rule {rule_id}")
        return row

    def list_rules(
        self,
        *,
        connection_id: int | None = None,
        resource_type: str | None = None,
        direction: RuleDirection | None = None,
        include_global: bool = True,
        enabled_only: bool = False,
    ) -> list[TransformationRule]:
        """Rules that apply to a connection (and globals), in the order they run."""
        query = select(TransformationRule)
        scope = TransformationRule.connection_id == connection_id
        if connection_id is None:
            scope = TransformationRule.connection_id.is_(None)
        elif include_global:
            scope = sa.or_(scope, TransformationRule.connection_id.is_(None))
        query = query.where(scope)
        if resource_type is not None:
            query = query.where(TransformationRule.resource_type.in_([resource_type, "*"]))
        if direction is not None:
            query = query.where(TransformationRule.direction.in_([direction, RuleDirection.BOTH]))
        if enabled_only:
            query = query.where(TransformationRule.enabled.is_(True))
        return sorted(self.session.exec(query).all(), key=_order)

    # -- changing (each audited) -----------------------------------------------------

    def create(self, data: RuleIn, *, actor: audit.Actor | None = None) -> TransformationRule:
        """Save a rule after validating its parameters.

        Raises:
            InvalidRule: the parameters do not fit the kind (bad path, FHIRPath, unit...).
            LookupError: the connection does not exist.
        """
        params = dump_params(parse_params(data.kind, data.params))
        self._check_connection(data.connection_id)
        position = data.position
        if position is None:
            position = self._next_position(data.connection_id)
        row = TransformationRule(
            **data.model_dump(exclude={"params", "position"}), params=params, position=position
        )
        self.session.add(row)
        self.session.flush()
        self._audit("create", row, actor, {"kind": row.kind.value, "position": position})
        return row

    def update(
        self, rule_id: int, patch: RulePatch, *, actor: audit.Actor | None = None
    ) -> TransformationRule:
        """Change a rule; the resulting kind and parameters are validated together."""
        row = self.get(rule_id)
        changes = patch.model_dump(exclude_unset=True)
        if "kind" in changes and "params" not in changes:
            raise InvalidRule([("params", "a new kind needs its parameters")])
        kind = changes.get("kind", row.kind)
        if "kind" in changes or "params" in changes:
            changes["params"] = dump_params(parse_params(kind, changes.get("params", row.params)))
        row.sqlmodel_update(changes)
        row.updated_at = utcnow()
        self.session.add(row)
        self._audit("update", row, actor, {"fields": sorted(changes)})
        return row

    def set_enabled(
        self, rule_id: int, enabled: bool, *, actor: audit.Actor | None = None
    ) -> TransformationRule:
        row = self.get(rule_id)
        if row.enabled != enabled:
            row.enabled = enabled
            row.updated_at = utcnow()
            self.session.add(row)
        self._audit("enable" if enabled else "disable", row, actor, {})
        return row

    def enable(self, rule_id: int, *, actor: audit.Actor | None = None) -> TransformationRule:
        return self.set_enabled(rule_id, True, actor=actor)

    def disable(self, rule_id: int, *, actor: audit.Actor | None = None) -> TransformationRule:
        return self.set_enabled(rule_id, False, actor=actor)

    def reorder(
        self,
        *,
        connection_id: int | None,
        rule_ids: Sequence[int],
        actor: audit.Actor | None = None,
    ) -> list[TransformationRule]:
        """Give the listed rules positions 0, 1, 2... in that order.

        Every id must belong to `connection_id` (None: the global rules); rules left out
        keep their positions.
        """
        if len(set(rule_ids)) != len(rule_ids):
            raise InvalidRule([("rule_ids", "a rule id is listed twice")])
        rows = [self.get(rule_id) for rule_id in rule_ids]
        if any(row.connection_id != connection_id for row in rows):
            raise InvalidRule([("rule_ids", "every rule must belong to this connection")])
        for position, row in enumerate(rows):
            row.position = position
            self.session.add(row)
        self.session.flush()
        audit.record(self.session, actor=actor or self.actor, action=f"{TARGET}.reorder",
                     target_type="connection", target_id=connection_id,
                     details={"rule_ids": list(rule_ids)})  # fmt: skip
        return rows

    def delete(self, rule_id: int, *, actor: audit.Actor | None = None) -> None:
        row = self.get(rule_id)
        self._audit("delete", row, actor, {"kind": row.kind.value})
        self.session.delete(row)
        self.session.flush()

    # -- applying --------------------------------------------------------------------

    def compile_for(
        self,
        connection_id: int | None,
        resource_type: str | None = None,
        direction: RuleDirection = RuleDirection.INBOUND,
    ) -> RuleBook:
        """Load and compile a connection's enabled rules once, for a batch."""
        rows = self.list_rules(
            connection_id=connection_id,
            resource_type=resource_type,
            direction=direction,
            enabled_only=True,
        )
        return compile_rules(rows)

    def apply_batch(
        self,
        resources: Iterable[Any],
        *,
        connection_id: int | None,
        direction: RuleDirection = RuleDirection.INBOUND,
    ) -> list[TransformResult]:
        """Compile once, apply to every resource in order; one result each, never raises."""
        return self.compile_for(connection_id, None, direction).apply_batch(resources)

    def dry_run(
        self,
        connection_id: int | None,
        resource: Any,
        *,
        direction: RuleDirection = RuleDirection.INBOUND,
    ) -> DryRun:
        """Apply a connection's rules to a sample; before, after, and what each rule did."""
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        book = self.compile_for(connection_id, rtype if isinstance(rtype, str) else None, direction)
        before = clone(resource)
        result = book.apply(resource)
        failures = list(book.invalid) + result.failures
        return DryRun.of(before, result.resource, result.changes, failures)

    # -- helpers ---------------------------------------------------------------------

    def _check_connection(self, connection_id: int | None) -> None:
        if connection_id is not None and self.session.get(EHRConnection, connection_id) is None:
            raise LookupError(f"no connection {connection_id}")

    def _next_position(self, connection_id: int | None) -> int:
        column = TransformationRule.position
        query = select(sa.func.max(column)).where(
            TransformationRule.connection_id == connection_id
            if connection_id is not None
            else TransformationRule.connection_id.is_(None)
        )
        last = self.session.exec(query).one()
        return 0 if last is None else last + 1

    def _audit(
        self, verb: str, row: TransformationRule, actor: audit.Actor | None, details: dict[str, Any]
    ) -> None:
        details = {
            "connection_id": row.connection_id,
            "resource_type": row.resource_type,
            **details,
        }
        audit.record(
            self.session,
            actor=actor or self.actor,
            action=f"{TARGET}.{verb}",
            target_type=TARGET,
            target_id=row.id,
            details=details,
        )


def _order(row: TransformationRule) -> tuple[int, int, int]:
    return (row.position, 0 if row.connection_id is None else 1, row.id or 0)
