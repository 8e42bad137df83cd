"""What HoloVitals holds for a patient, with each record's sync state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel
from sqlmodel import select

from ..models import Conflict, ConflictStatus, EHRConnection, SyncedRecord
from .deps import SessionDep, Viewer

router = APIRouter(prefix="/api/records", tags=["records"])


class RecordOut(BaseModel):
    id: int
    resource_type: str
    remote_id: str
    remote_version: str | None
    dirty: bool
    flagged_invalid: bool
    deleted: bool
    last_synced_at: datetime | None
    open_conflicts: int
    body: dict[str, Any] | None  # the HoloVitals copy


@router.get("", response_model=list[RecordOut])
def patient_records(
    _viewer: Viewer,
    session: SessionDep,
    connection_id: int = Query(),
    patient: str = Query(min_length=1, max_length=200, description="Patient/<id> or <id>"),
    resource_type: str | None = Query(default=None, max_length=64),
) -> list[RecordOut]:
    """Every record of one patient on one connection (the Patient itself included)."""
    if session.get(EHRConnection, connection_id) is None:
        raise HTTPException(404, "no such connection")
    ref = patient if patient.startswith("Patient/") else f"Patient/{patient}"
    patient_id = ref.split("/", 1)[1]
    mine = sa.or_(
        SyncedRecord.patient_ref == ref,
        sa.and_(SyncedRecord.resource_type == "Patient", SyncedRecord.remote_id == patient_id),
    )
    query = select(SyncedRecord).where(SyncedRecord.connection_id == connection_id, mine)
    if resource_type:
        query = query.where(SyncedRecord.resource_type == resource_type)
    rows = session.exec(query.order_by(SyncedRecord.resource_type, SyncedRecord.remote_id)).all()
    open_counts = dict(
        session.exec(
            select(Conflict.record_id, sa.func.count())
            .where(Conflict.record_id.in_([r.id for r in rows]),
                   Conflict.status == ConflictStatus.OPEN)
            .group_by(Conflict.record_id)
        ).all()
    )  # fmt: skip
    return [
        RecordOut(
            **row.model_dump(include=set(RecordOut.model_fields) - {"open_conflicts", "body"}),
            open_conflicts=open_counts.get(row.id, 0),
            body=row.local_copy,
        )
        for row in rows
    ]
