"""HL7 v2 feeds (ADT over MLLP): which sender belongs to which connection, and each message.

A message is stored, encrypted, before it is acknowledged (it carries PHI: names, MRNs,
birth dates); the columns beside it hold only what the feed's operators and the processing
need to find it again — sender, control id, event — never its content.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from .enums import InboundStatus
from .types import created_at_field, enum_type, json_field, time_field, updated_at_field


class HL7FeedBase(SQLModel):
    # MSH-3 and MSH-4 as the sender writes them (their first component, the namespace id).
    sending_application: str = Field(max_length=180)
    # Empty: any facility of that application.
    sending_facility: str = Field(default="", max_length=180)
    # Assigning authority (PID-3.4 namespace id) -> FHIR identifier system, for authorities
    # that do not name themselves with an OID or URI.
    identifier_systems: dict[str, str] = json_field()


class HL7Feed(HL7FeedBase, table=True):
    """One sending application (at one facility, or any) whose messages belong to a
    connection; messages of a sender that no feed names are rejected (AR)."""

    __tablename__ = "hl7_feed"
    __table_args__ = (
        sa.UniqueConstraint("sending_application", "sending_facility", name="uq_hl7_feed_sender"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="ehr_connection.id", ondelete="CASCADE", index=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class HL7Message(SQLModel, table=True):
    """One accepted message: stored before its AA, processed on the webhooks queue."""

    __tablename__ = "hl7_message"
    __table_args__ = (
        # A repeated message (same MSH-10 from the same sender) is stored once.
        sa.UniqueConstraint("connection_id", "sender", "control_id", name="uq_hl7_message_key"),
        sa.Index("ix_hl7_message_conn_status", "connection_id", "status", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="ehr_connection.id", ondelete="CASCADE")
    sender: str = Field(max_length=400)  # "MSH-3|MSH-4"
    control_id: str = Field(max_length=200)  # MSH-10
    message_type: str = Field(max_length=16)  # "ADT^A08"
    body_encrypted: str  # Fernet token of the message bytes as received
    status: InboundStatus = Field(default=InboundStatus.RECEIVED, sa_type=enum_type(InboundStatus))
    outcome: str | None = Field(default=None, max_length=200)  # a fixed phrase, never content
    patient_id: str | None = Field(default=None, max_length=64)  # the EHR's Patient id
    job_id: int | None = Field(default=None, foreign_key="sync_job.id", ondelete="SET NULL")
    received_at: datetime = created_at_field()
    processed_at: datetime | None = time_field()


class PatientMerge(SQLModel, table=True):
    """A patient the EHR merged into another (ADT A40): the link from the merged record to
    its survivor, kept so the merged id is never synced as a patient of its own again."""

    __tablename__ = "patient_merge"
    __table_args__ = (
        sa.UniqueConstraint("connection_id", "merged_patient_id", name="uq_patient_merge"),
    )

    id: int | None = Field(default=None, primary_key=True)
    connection_id: int = Field(foreign_key="ehr_connection.id", ondelete="CASCADE")
    merged_patient_id: str = Field(max_length=64)
    survivor_patient_id: str = Field(max_length=64)
    message_id: int | None = Field(default=None, foreign_key="hl7_message.id", ondelete="SET NULL")
    merged_at: datetime = created_at_field()
