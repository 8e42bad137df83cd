"""EHR connections: create, edit, delete, signing keys and the public JWKS.

Secrets (client secret, private key) are encrypted before they reach the database and are
never returned: the public view says only whether one is set.
"""

from __future__ import annotations

import re
import threading
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, field_validator
from sqlmodel import Session, select

from ..adapters import ConfigurationError, known_profile
from ..fhir.keys import generate_key_pair, key_pair_from_pem
from ..models import AuthMethod, ConnectionStatus, EHRConnection, ValidationMode, Vendor
from ..models.connection import DEFAULT_SWEEP
from ..models.types import utcnow
from . import audit
from .crypto import decrypt, encrypt
from .hl7 import held
from .patches import Patch

# How a full sync reads the EHR (`EHRConnection.full_sync_via`).
FullSyncVia = Literal["export", "search"]
# A FHIR R4 resource type's name: letters only, upper-case first (R4 has 145 types).
_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")
MAX_TYPES = 150


class UnservedTypes(ValueError):
    """The connection's vendor does not serve some of the types chosen for it."""


def check_resource_types(value: list[str]) -> list[str]:
    """The types to sync as stored: each name once, in the order given; [] for every type.

    Patient must be among them: every other record is filed under its patient.
    """
    names = list(dict.fromkeys(name.strip() for name in value if name.strip()))
    bad = next((name for name in names if not _TYPE_NAME.fullmatch(name)), None)
    if bad is not None:
        raise ValueError(f"not a FHIR resource type: {bad[:64]!r}")
    if names and "Patient" not in names:
        raise ValueError("Patient is always synced: add it, or leave the list empty for all")
    return names


ResourceTypes = Annotated[
    list[str], Field(max_length=MAX_TYPES), AfterValidator(check_resource_types)
]


def check_served(vendor: Vendor, vendor_params: dict[str, Any], types: list[str]) -> None:
    """Refuse types the vendor never serves, before anything is stored.

    A generic server declares its types in its CapabilityStatement, read when a job runs:
    there the connection's test names any chosen type the server does not offer.

    Raises:
        UnservedTypes: Some chosen type is not among the vendor's.
    """
    try:
        profile = known_profile(vendor.value, {k: str(v) for k, v in vendor_params.items()})
    except ConfigurationError:
        return  # the settings pick no profile yet; the connection's test says why
    if profile is None:
        return
    if unserved := [t for t in types if t not in profile.resource_types]:
        raise UnservedTypes(
            f"{profile.display_name} does not serve {', '.join(unserved)}; "
            f"it serves {', '.join(profile.resource_types)}"
        )


def check_base_url(value: str) -> str:
    """An absolute http(s) URL with a host, no spaces or control characters (a NUL byte
    was stored once, and the connection's test answered 500)."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("a URL holds no spaces or control characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("enter a URL starting with http:// or https:// and a host")
    return value


class ConnectionIn(BaseModel):
    """What an administrator fills in for a new connection."""

    name: str = Field(min_length=1, max_length=200)
    vendor: Vendor
    base_url: str = Field(min_length=8, max_length=500, pattern=r"^https?://")
    client_id: str = Field(default="", max_length=300)
    auth_method: AuthMethod = AuthMethod.CLIENT_SECRET_BASIC
    client_secret: str | None = Field(default=None, max_length=2000)
    scopes: str = Field(default="system/*.read", max_length=2000)
    vendor_params: dict[str, str] = Field(default_factory=dict)
    sync_schedule: str | None = Field(default=None, max_length=100)
    # The id sweep that finds records the EHR deleted without saying so; None turns it off.
    sweep_schedule: str | None = Field(default=DEFAULT_SWEEP, max_length=100)
    concurrency_limit: int = Field(default=2, ge=1, le=50)
    # `_count` to ask for; None: the vendor's default (1,000 for a generic server).
    page_size: int | None = Field(default=None, ge=10, le=10_000)
    stream_limit: int = Field(default=4, ge=1, le=16)
    full_sync_via: FullSyncVia = "export"
    # The types to sync; [] (the default): every type the vendor or server offers.
    resource_types: ResourceTypes = Field(default_factory=list)
    validation_mode: ValidationMode = ValidationMode.LENIENT

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)

    @field_validator("sync_schedule", "sweep_schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value:
            from croniter import croniter

            if not croniter.is_valid(value):
                raise ValueError("not a valid cron expression")
        return value or None


class ConnectionPatch(Patch):
    """Fields an administrator may change; unset fields stay as they are (`null` clears a
    schedule and is ignored for the secret)."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset(
        {"sync_schedule", "sweep_schedule", "client_secret", "page_size"}
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    base_url: str | None = Field(default=None, min_length=8, max_length=500, pattern=r"^https?://")
    client_id: str | None = Field(default=None, max_length=300)
    auth_method: AuthMethod | None = None
    client_secret: str | None = Field(default=None, max_length=2000)
    scopes: str | None = Field(default=None, max_length=2000)
    vendor_params: dict[str, str] | None = None
    sync_schedule: str | None = Field(default=None, max_length=100)
    sweep_schedule: str | None = Field(default=None, max_length=100)
    concurrency_limit: int | None = Field(default=None, ge=1, le=50)
    page_size: int | None = Field(default=None, ge=10, le=10_000)
    stream_limit: int | None = Field(default=None, ge=1, le=16)
    full_sync_via: FullSyncVia | None = None
    resource_types: ResourceTypes | None = None
    validation_mode: ValidationMode | None = None
    status: ConnectionStatus | None = None

    _cron = field_validator("sync_schedule", "sweep_schedule")(ConnectionIn._cron.__func__)  # type: ignore[attr-defined]
    _base_url = field_validator("base_url")(ConnectionIn._url.__func__)  # type: ignore[attr-defined]


class ConnectionOut(BaseModel):
    """A connection as the API and UI show it: no secret, only whether one is set."""

    id: int
    name: str
    vendor: Vendor
    base_url: str
    client_id: str
    auth_method: AuthMethod
    scopes: str
    vendor_params: dict[str, Any]
    sync_schedule: str | None
    sweep_schedule: str | None
    concurrency_limit: int
    page_size: int | None
    page_size_learned: int | None
    stream_limit: int
    full_sync_via: FullSyncVia
    resource_types: list[str]
    validation_mode: ValidationMode
    status: ConnectionStatus
    has_client_secret: bool
    has_signing_key: bool
    key_id: str | None

    @classmethod
    def of(cls, row: EHRConnection) -> ConnectionOut:
        data = row.model_dump(exclude={"credentials_encrypted", "private_key_encrypted"})
        return cls(
            **data,
            has_client_secret=row.credentials_encrypted is not None,
            has_signing_key=row.private_key_encrypted is not None,
        )


class DuplicateName(ValueError):
    """Another connection already has this name."""


def _check_name(session: Session, name: str, exclude_id: int | None = None) -> None:
    clash = session.exec(select(EHRConnection).where(EHRConnection.name == name)).first()
    if clash is not None and clash.id != exclude_id:
        raise DuplicateName(f"a connection named {name!r} exists already")


def create_connection(session: Session, *, data: ConnectionIn, actor: audit.Actor) -> EHRConnection:
    """Create a connection, encrypting its client secret.

    Raises:
        DuplicateName: Another connection has the name.
        UnservedTypes: The vendor does not serve some chosen type.
    """
    _check_name(session, data.name)
    check_served(data.vendor, data.vendor_params, data.resource_types)
    row = EHRConnection(**data.model_dump(exclude={"client_secret"}))
    if data.client_secret:
        row.credentials_encrypted = encrypt(data.client_secret)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="connection.create", target_type="connection",
                 target_id=row.id, details={"vendor": row.vendor.value})  # fmt: skip
    return row


_ASKS_ANEW = ("page_size", "base_url")


def update_connection(
    session: Session, *, row: EHRConnection, patch: ConnectionPatch, actor: audit.Actor
) -> EHRConnection:
    """Apply a partial update; a new client secret replaces the old one (audited).

    Raises:
        DuplicateName: Another connection has the new name.
        UnservedTypes: The vendor does not serve some chosen type.
    """
    changes = patch.model_dump(exclude_unset=True)
    if "name" in changes:
        _check_name(session, changes["name"], exclude_id=row.id)
    secret = changes.pop("client_secret", None)
    if changes.get("resource_types"):
        check_served(row.vendor, changes.get("vendor_params") or row.vendor_params or {},
                     changes["resource_types"])  # fmt: skip
    # What the server was found to honour holds until the size asked for or the server
    # changes (a form that sends every field unchanged keeps it).
    if any(name in changes and changes[name] != getattr(row, name) for name in _ASKS_ANEW):
        row.page_size_learned = None
    row.sqlmodel_update(changes)
    if secret:
        row.credentials_encrypted = encrypt(secret)
    session.add(row)
    details: dict[str, Any] = {"fields": sorted(changes) + (["client_secret"] if secret else [])}
    if released := held.release(session, int(row.id or 0)):
        details["hl7_messages_released"] = released
    audit.record(session, actor=actor, action="connection.update", target_type="connection",
                 target_id=row.id, details=details)  # fmt: skip
    return row


def delete_connection(session: Session, *, row: EHRConnection, actor: audit.Actor) -> None:
    audit.record(session, actor=actor, action="connection.delete", target_type="connection",
                 target_id=row.id, details={"name": row.name})  # fmt: skip
    session.delete(row)


def generate_signing_key(
    session: Session, *, row: EHRConnection, alg: str, actor: audit.Actor
) -> dict[str, Any]:
    """Give the connection a new key pair; returns the public JWKS to register."""
    pair = generate_key_pair(alg)
    row.private_key_encrypted = encrypt(pair.private_key_pem)
    row.key_id = pair.kid
    session.add(row)
    details: dict[str, Any] = {"alg": alg, "kid": pair.kid}
    if released := held.release(session, int(row.id or 0)):
        details["hl7_messages_released"] = released
    audit.record(session, actor=actor, action="connection.key_generate",
                 target_type="connection", target_id=row.id, details=details)  # fmt: skip
    return pair.jwks


def public_jwks(row: EHRConnection) -> dict[str, Any]:
    """The JWKS the EHR fetches from our stable URL (empty when no key was generated)."""
    if row.private_key_encrypted is None:
        return {"keys": []}
    return key_pair_from_pem(decrypt(row.private_key_encrypted)).jwks


class StepOut(BaseModel):
    name: str
    ok: bool
    detail: str


# A person waits for the answer: the whole test gets this long at most, whatever the EHR.
TEST_DEADLINE = 30.0


class ConnectionMissing(LookupError):
    """No connection with that id (it was deleted meanwhile)."""


def _within_deadline(spec: Any) -> list[StepOut]:
    """The adapter's steps, or what came back before `TEST_DEADLINE` and a failed step.

    Each request has its own limits (and retries); the person waiting needs one for the
    whole test, so it runs in a thread of its own, and the pool is closed on it when late.
    """
    from ..adapters import adapter_for

    adapter = adapter_for(spec)
    found: dict[str, Any] = {}

    def run() -> None:
        try:
            found["steps"] = adapter.test_connection()
        except Exception as exc:  # reported as a step; the thread must not die silently
            found["error"] = exc

    worker = threading.Thread(target=run, name="connection-test", daemon=True)
    worker.start()
    worker.join(TEST_DEADLINE)
    adapter.close()
    if "steps" in found:
        return [StepOut(name=s.name, ok=s.ok, detail=s.detail) for s in found["steps"]]
    if "error" in found:
        raise found["error"]
    return [
        StepOut(
            name="deadline",
            ok=False,
            detail=f"the EHR did not finish answering within {TEST_DEADLINE:g} s",
        )
    ]


def test_connection(connection_id: int, *, actor: audit.Actor) -> list[StepOut]:
    """Discovery, token, CapabilityStatement and one Patient search against the EHR.

    No database transaction is open while the EHR answers: a slow or trickling EHR once
    held SQLite's write lock for as long as it hung, and every other request, sync job and
    cancel waited behind it. The row is read, the EHR is asked (within `TEST_DEADLINE`),
    then the verdict and its audit entry are written in a short transaction of their own.
    Each step's verdict carries the vendor's own error text (no PHI, secrets masked).
    """
    from dataclasses import replace

    from ..db import session_scope
    from .connection_spec import connection_spec

    with session_scope() as session:
        row = session.get(EHRConnection, connection_id)
        if row is None:
            raise ConnectionMissing(f"no connection {connection_id}")
        spec = connection_spec(row)
    spec = replace(
        spec,
        total_timeout=min(spec.total_timeout, TEST_DEADLINE),
        timeout=min(spec.timeout, TEST_DEADLINE),
    )
    steps = _within_deadline(spec)
    ok = all(step.ok for step in steps)
    with session_scope() as session:
        row = session.get(EHRConnection, connection_id)
        if row is None:
            raise ConnectionMissing(f"no connection {connection_id}")
        row.last_tested_at, row.last_test_ok = utcnow(), ok
        session.add(row)
        audit.record(session, actor=actor, action="connection.test", target_type="connection",
                     target_id=row.id, outcome="success" if ok else "failed")  # fmt: skip
    return steps
