"""Every enumeration the tables use. Stored by value (see `types.enum_type`)."""

from __future__ import annotations

from enum import StrEnum


class Vendor(StrEnum):
    EPIC = "epic"
    ORACLE_HEALTH = "oracle_health"
    MEDITECH = "meditech"
    VERADIGM = "veradigm"
    NEXTGEN = "nextgen"
    ATHENAHEALTH = "athenahealth"
    ECLINICALWORKS = "eclinicalworks"
    GENERIC = "generic"


class AuthMethod(StrEnum):
    SMART_BACKEND = "smart_backend"  # private_key_jwt client assertion
    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    BEARER = "bearer"
    NONE = "none"


class ConnectionStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ERROR = "error"


class ValidationMode(StrEnum):
    STRICT = "strict"  # invalid records are not stored
    LENIENT = "lenient"  # stored and flagged


class JobType(StrEnum):
    PATIENT = "patient"
    INCREMENTAL = "incremental"
    FULL = "full"
    RESOURCE = "resource"
    SWEEP = "sweep"  # ids only: finds records the EHR deleted without saying so


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    BIDIRECTIONAL = "bidirectional"


class FetchMode(StrEnum):
    """How a job reads from the EHR; chosen from the vendor's capabilities."""

    AUTO = "auto"
    SEARCH = "search"
    BULK_EXPORT = "bulk_export"
    EVERYTHING = "everything"


class JobStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class Priority(StrEnum):
    HIGH = "high"
    DEFAULT = "default"
    LOW = "low"


class RequesterKind(StrEnum):
    USER = "user"
    TOKEN = "token"
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"
    SYSTEM = "system"


class ErrorSeverity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class ConflictKind(StrEnum):
    FIELD = "field"  # same element changed differently on both sides
    STALE_WRITE = "stale_write"  # outbound write answered 412 (or Cerner's 409)
    DUPLICATE = "duplicate"  # same identifier from two remote ids
    REMOTE_DELETED = "remote_deleted"  # the EHR deleted a record with local changes pending


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class ConflictStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    IGNORED = "ignored"


class ResolutionStrategy(StrEnum):
    USE_LOCAL = "use_local"
    USE_REMOTE = "use_remote"
    MERGE = "merge"
    MANUAL = "manual"
    IGNORE = "ignore"


class TransformKind(StrEnum):
    COPY_FIELD = "copy_field"
    VALUE_MAP = "value_map"
    CODE_TRANSLATION = "code_translation"
    UNIT_CONVERSION = "unit_conversion"
    DATETIME_NORMALISE = "datetime_normalise"
    STRING_NORMALISE = "string_normalise"
    DEFAULT_VALUE = "default_value"
    REDACT = "redact"
    COMPUTED = "computed"


class RuleDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    BOTH = "both"


class SignatureAlgorithm(StrEnum):
    HMAC_SHA256 = "hmac-sha256"
    HMAC_SHA512 = "hmac-sha512"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"  # retries exhausted
    CANCELLED = "cancelled"  # subscription deleted or record moved on


class InboundAuth(StrEnum):
    """How an EHR proves an inbound webhook is its own."""

    HOLOVITALS_HMAC = "holovitals_hmac"  # X-HoloVitals-Signature: t=..,v1=..
    WEBSUB_HMAC = "websub_hmac"  # X-Hub-Signature: sha256=<hex> (athenahealth)
    PLAIN_HMAC = "plain_hmac"  # X-Signature: <hex> (Medplum and similar)
    BEARER = "bearer"


class InboundStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    FAILED = "failed"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class ActorKind(StrEnum):
    USER = "user"
    TOKEN = "token"
    SYSTEM = "system"
