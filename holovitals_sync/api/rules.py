"""Transformation rules: list, create, edit, enable/disable, reorder, delete, dry run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from ..models import RuleDirection, TransformationRule, TransformKind
from ..services.transformation import DataTransformationService, InvalidRule, RuleNotFound
from ..services.transformation.schemas import DryRun, RuleIn, RulePatch
from .deps import Admin, Operator, SessionDep, Viewer
from .strict import strict_body

router = APIRouter(prefix="/api/transformations/rules", tags=["transformations"])


class RuleOut(BaseModel):
    id: int
    connection_id: int | None
    resource_type: str
    kind: TransformKind
    params: dict[str, Any]
    position: int
    enabled: bool
    direction: RuleDirection
    description: str | None
    updated_at: datetime


class ReorderIn(BaseModel):
    connection_id: int | None = None
    rule_ids: list[int] = Field(min_length=1, max_length=1000)


class EnabledIn(BaseModel):
    enabled: bool


class DryRunIn(BaseModel):
    connection_id: int | None = None
    direction: RuleDirection = RuleDirection.INBOUND
    resource: dict[str, Any]


def _invalid(exc: InvalidRule) -> HTTPException:
    return HTTPException(422, f"invalid rule: {exc}")


# Request bodies with strict scalars (see api.strict): `true` is not an integer here.
RuleBody = strict_body(RuleIn)
RulePatchBody = strict_body(RulePatch)
EnabledBody = strict_body(EnabledIn)
ReorderBody = strict_body(ReorderIn)
DryRunBody = strict_body(DryRunIn)


@router.get("", response_model=list[RuleOut])
def list_rules(
    _viewer: Viewer,
    session: SessionDep,
    connection_id: int | None = Query(default=None),
    resource_type: str | None = Query(default=None, max_length=64),
) -> list[TransformationRule]:
    """The rules that apply to a connection (with the global ones), in the order they run."""
    service = DataTransformationService(session)
    return service.list_rules(connection_id=connection_id, resource_type=resource_type)


@router.post("", response_model=RuleOut, status_code=201)
def create_rule(body: RuleBody, admin: Admin, session: SessionDep) -> TransformationRule:
    """Add a rule; its parameters are checked now (an invalid FHIRPath is refused here)."""
    try:
        return DataTransformationService(session, actor=admin.actor).create(body)
    except InvalidRule as exc:
        raise _invalid(exc) from None
    except LookupError:
        raise HTTPException(404, "no such connection") from None


@router.patch("/{rule_id}", response_model=RuleOut)
def update_rule(rule_id: int, body: RulePatchBody, admin: Admin, session: SessionDep
                ) -> TransformationRule:  # fmt: skip
    """Change a rule."""
    try:
        return DataTransformationService(session, actor=admin.actor).update(rule_id, body)
    except RuleNotFound:
        raise HTTPException(404, "no such rule") from None
    except InvalidRule as exc:
        raise _invalid(exc) from None


@router.put("/{rule_id}/enabled", response_model=RuleOut)
def set_enabled(rule_id: int, body: EnabledBody, admin: Admin, session: SessionDep
                ) -> TransformationRule:  # fmt: skip
    """Enable or disable a rule."""
    try:
        return DataTransformationService(session, actor=admin.actor).set_enabled(
            rule_id, body.enabled
        )
    except RuleNotFound:
        raise HTTPException(404, "no such rule") from None


@router.post("/reorder", response_model=list[RuleOut])
def reorder(body: ReorderBody, admin: Admin, session: SessionDep) -> list[TransformationRule]:
    """Put the listed rules in this order."""
    try:
        return DataTransformationService(session, actor=admin.actor).reorder(
            connection_id=body.connection_id, rule_ids=body.rule_ids
        )
    except RuleNotFound:
        raise HTTPException(404, "no such rule") from None
    except InvalidRule as exc:
        raise _invalid(exc) from None


@router.delete("/{rule_id}", status_code=204)
def delete_rule(rule_id: int, admin: Admin, session: SessionDep) -> None:
    """Delete a rule."""
    try:
        DataTransformationService(session, actor=admin.actor).delete(rule_id)
    except RuleNotFound:
        raise HTTPException(404, "no such rule") from None


@router.post("/dry-run", response_model=DryRun)
def dry_run(body: DryRunBody, _operator: Operator, session: SessionDep) -> DryRun:
    """Apply the rules to a sample resource: before, after, and which rule changed what."""
    return DataTransformationService(session).dry_run(
        body.connection_id, body.resource, direction=body.direction
    )
