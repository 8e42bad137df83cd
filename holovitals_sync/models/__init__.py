"""SQLModel tables, one module per aggregate. Importing this package registers them all."""

from .alerts import Alert, AlertKind, AlertStatus, AlertThreshold
from .audit import AuditAnchor, AuditLog
from .checkpoint import SyncCheckpoint
from .conflict import Conflict
from .conflict_policy import ConflictPolicy
from .connection import EHRConnection, EHRConnectionBase
from .enums import *  # noqa: F403
from .hl7 import HL7Feed, HL7FeedBase, HL7Message, PatientMerge
from .identifier import RecordIdentifier
from .job import COUNTERS as JOB_COUNTERS
from .job import SyncJob, SyncJobBase
from .record import RecordError, SyncedRecord
from .transformation import TransformationRule
from .user import ApiToken, AuthSession, User
from .webhook import InboundEvent, InboundRejection, WebhookDelivery, WebhookSubscription

__all__ = [
    "JOB_COUNTERS",
    "Alert",
    "AlertKind",
    "AlertStatus",
    "AlertThreshold",
    "ApiToken",
    "AuditAnchor",
    "AuditLog",
    "AuthSession",
    "Conflict",
    "ConflictPolicy",
    "EHRConnection",
    "EHRConnectionBase",
    "HL7Feed",
    "HL7FeedBase",
    "HL7Message",
    "InboundEvent",
    "InboundRejection",
    "PatientMerge",
    "RecordError",
    "RecordIdentifier",
    "SyncCheckpoint",
    "SyncJob",
    "SyncJobBase",
    "SyncedRecord",
    "TransformationRule",
    "User",
    "WebhookDelivery",
    "WebhookSubscription",
]
