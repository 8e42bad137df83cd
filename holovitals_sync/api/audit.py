"""Reading and verifying the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import select

from ..models import AuditLog
from ..services import audit
from .deps import Admin, Operator, SessionDep

router = APIRouter(prefix="/api/audit", tags=["audit"])


class AuditOut(BaseModel):
    seq: int
    at: datetime
    actor_kind: str
    actor: str
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, Any]
    ip: str | None
    outcome: str


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_before: int | None  # pass as `before` for the next (older) page


class ChainOut(BaseModel):
    ok: bool
    entries: int
    first_bad_seq: int | None
    problem: str | None


@router.get("", response_model=AuditPage)
def list_audit(
    _operator: Operator,
    session: SessionDep,
    before: int | None = Query(default=None, ge=1),
    limit: int = Query(default=50, ge=1, le=500),
    action: str | None = Query(default=None, max_length=100),
) -> AuditPage:
    """Newest entries first, paged by sequence number."""
    query = select(AuditLog).order_by(AuditLog.seq.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditLog.seq < before)
    if action:
        query = query.where(AuditLog.action == action)
    rows = list(session.exec(query))
    items = [AuditOut.model_validate(r, from_attributes=True) for r in rows]
    next_before = rows[-1].seq if len(rows) == limit else None
    return AuditPage(items=items, next_before=next_before)


@router.get("/verify", response_model=ChainOut)
def verify(_admin: Admin, session: SessionDep) -> ChainOut:
    """Check the hash chain; names the first entry that was edited or removed."""
    report = audit.verify_chain(session)
    return ChainOut(**report.__dict__)
