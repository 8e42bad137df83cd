"""An EHR connection: one hospital endpoint, its credentials and how it is synced."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from .enums import AuthMethod, ConnectionStatus, ValidationMode, Vendor
from .types import created_at_field, enum_type, json_field, time_field, updated_at_field

# Nightly: cheap (ids only), and the only way to notice deletes some EHRs never announce.
DEFAULT_SWEEP = "30 2 * * *"


class EHRConnectionBase(SQLModel):
    name: str = Field(max_length=200, index=True, unique=True)
    vendor: Vendor = Field(sa_type=enum_type(Vendor), index=True)
    base_url: str = Field(max_length=500)
    client_id: str = Field(default="", max_length=300)
    auth_method: AuthMethod = Field(
        default=AuthMethod.CLIENT_SECRET_BASIC, sa_type=enum_type(AuthMethod)
    )
    scopes: str = Field(default="", max_length=2000)
    # Vendor-specific fields the administrator fills in (tenant id, practice id, ...).
    vendor_params: dict[str, Any] = json_field()
    sync_schedule: str | None = Field(default=None, max_length=100)  # cron expression
    # When the id sweep looks for records the EHR deleted without saying so (cron; None: off).
    sweep_schedule: str | None = Field(default=DEFAULT_SWEEP, max_length=100)
    concurrency_limit: int = Field(default=2, ge=1, le=50)
    # `_count` to ask for (None: the vendor profile's default, 1,000 for a generic server);
    # the engine lowers it to what the server turns out to honour (`page_size_learned`).
    page_size: int | None = Field(default=None, ge=10, le=10_000)
    # Resource types one sync job pages at once (each counts against concurrency_limit).
    stream_limit: int = Field(default=4, ge=1, le=16)
    # How a full sync reads the EHR: "export" (Bulk Data `$export` where the server offers
    # it and the vendor means it for full syncs, else paged search) or "search" (always paged
    # search; faster on a server that pages quickly but exports slowly).
    full_sync_via: str = Field(default="export", max_length=16)
    # The resource types this connection syncs ([]: every type the vendor serves, or that a
    # generic server declares searchable). Patient is always among them.
    resource_types: list[str] = json_field(list)
    validation_mode: ValidationMode = Field(
        default=ValidationMode.LENIENT, sa_type=enum_type(ValidationMode)
    )
    # Custom validation checks (services.validation.custom), validated when saved.
    validation_rules: list[dict[str, Any]] = json_field(list)


class EHRConnection(EHRConnectionBase, table=True):
    __tablename__ = "ehr_connection"

    id: int | None = Field(default=None, primary_key=True)
    status: ConnectionStatus = Field(
        default=ConnectionStatus.DRAFT, sa_type=enum_type(ConnectionStatus), index=True
    )
    # Fernet tokens (services.crypto); never returned by the API.
    credentials_encrypted: str | None = Field(default=None)
    private_key_encrypted: str | None = Field(default=None)
    key_id: str | None = Field(default=None, max_length=100)
    # Inbound webhook authenticity for this EHR (see webhook models).
    inbound_auth: str | None = Field(default=None, max_length=32)
    inbound_secret_encrypted: str | None = Field(default=None)
    last_tested_at: datetime | None = time_field()
    last_test_ok: bool | None = Field(default=None)
    last_synced_at: datetime | None = time_field()
    # The largest page this server was seen to honour (it capped `_count` silently or
    # refused a larger one); later jobs ask for no more.
    page_size_learned: int | None = Field(default=None)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
