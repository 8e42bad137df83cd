"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 03:57:47.358938
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from holovitals_sync.models import types as hv_types

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sqlmodel.AutoString(length=150), nullable=False),
        sa.Column("password_hash", sqlmodel.AutoString(length=300), nullable=False),
        sa.Column(
            "role",
            sa.Enum("admin", "operator", "viewer", name="role", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", hv_types.UTCDateTime(), nullable=True),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("last_login_at", hv_types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_user_username"), ["username"], unique=True)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", hv_types.UTCDateTime(), nullable=False),
        sa.Column(
            "actor_kind",
            sa.Enum("user", "token", "system", name="actorkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("actor", sqlmodel.AutoString(length=200), nullable=False),
        sa.Column("action", sqlmodel.AutoString(length=100), nullable=False),
        sa.Column("target_type", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("target_id", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("details", hv_types.JSONType, nullable=False),
        sa.Column("ip", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("outcome", sqlmodel.AutoString(length=32), nullable=False),
        sa.Column("prev_hash", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column("entry_hash", sqlmodel.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_hash"),
        sa.UniqueConstraint("seq"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_target", ["target_type", "target_id"], unique=False)

    op.create_table(
        "ehr_connection",
        sa.Column("name", sqlmodel.AutoString(length=200), nullable=False),
        sa.Column(
            "vendor",
            sa.Enum(
                "epic",
                "oracle_health",
                "meditech",
                "veradigm",
                "nextgen",
                "athenahealth",
                "eclinicalworks",
                "generic",
                name="vendor",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("base_url", sqlmodel.AutoString(length=500), nullable=False),
        sa.Column("client_id", sqlmodel.AutoString(length=300), nullable=False),
        sa.Column(
            "auth_method",
            sa.Enum(
                "smart_backend",
                "client_secret_basic",
                "client_secret_post",
                "bearer",
                "none",
                name="authmethod",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("scopes", sqlmodel.AutoString(length=2000), nullable=False),
        sa.Column("vendor_params", hv_types.JSONType, nullable=False),
        sa.Column("sync_schedule", sqlmodel.AutoString(length=100), nullable=True),
        sa.Column("concurrency_limit", sa.Integer(), nullable=False),
        sa.Column(
            "validation_mode",
            sa.Enum("strict", "lenient", name="validationmode", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "active",
                "paused",
                "error",
                name="connectionstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("credentials_encrypted", sqlmodel.AutoString(), nullable=True),
        sa.Column("private_key_encrypted", sqlmodel.AutoString(), nullable=True),
        sa.Column("key_id", sqlmodel.AutoString(length=100), nullable=True),
        sa.Column("inbound_auth", sqlmodel.AutoString(length=32), nullable=True),
        sa.Column("inbound_secret_encrypted", sqlmodel.AutoString(), nullable=True),
        sa.Column("last_tested_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("last_test_ok", sa.Boolean(), nullable=True),
        sa.Column("last_synced_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", hv_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ehr_connection", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ehr_connection_name"), ["name"], unique=True)
        batch_op.create_index(batch_op.f("ix_ehr_connection_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_ehr_connection_vendor"), ["vendor"], unique=False)

    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.AutoString(length=200), nullable=False),
        sa.Column("prefix", sqlmodel.AutoString(length=16), nullable=False),
        sa.Column("token_hash", sqlmodel.AutoString(length=128), nullable=False),
        sa.Column(
            "role",
            sa.Enum("admin", "operator", "viewer", name="role", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", hv_types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_token_prefix"), ["prefix"], unique=False)

    op.create_table(
        "auth_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.AutoString(length=128), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("ip", sqlmodel.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_session_user_id"), ["user_id"], unique=False)

    op.create_table(
        "sync_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("resource_type", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column("cursor", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("last_synced_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("bulk_state", hv_types.JSONType, nullable=False),
        sa.Column("updated_at", hv_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("connection_id", "resource_type", name="uq_checkpoint_conn_type"),
    )
    op.create_table(
        "sync_job",
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column(
            "job_type",
            sa.Enum(
                "patient",
                "incremental",
                "full",
                "resource",
                name="jobtype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "direction",
            sa.Enum(
                "inbound",
                "outbound",
                "bidirectional",
                name="direction",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "mode",
            sa.Enum(
                "auto",
                "search",
                "bulk_export",
                "everything",
                name="fetchmode",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "priority",
            sa.Enum("high", "default", "low", name="priority", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("patient_id", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("resource_type", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "queued",
                "running",
                "completed",
                "failed",
                "cancelled",
                name="jobstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "requested_by_kind",
            sa.Enum(
                "user",
                "token",
                "schedule",
                "webhook",
                "system",
                name="requesterkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("requested_by", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("rq_job_id", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("invalid", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.Column("written", sa.Integer(), nullable=False),
        sa.Column("total_estimate", sa.Integer(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.AutoString(length=2000), nullable=True),
        sa.Column("checkpoint", hv_types.JSONType, nullable=False),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("queued_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("started_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("updated_at", hv_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sync_job", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_job_connection_created", ["connection_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sync_job_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sync_job_rq_job_id"), ["rq_job_id"], unique=True)
        batch_op.create_index("ix_sync_job_status_created", ["status", "created_at"], unique=False)

    op.create_table(
        "transformation_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("resource_type", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "copy_field",
                "value_map",
                "code_translation",
                "unit_conversion",
                "datetime_normalise",
                "string_normalise",
                "default_value",
                "redact",
                "computed",
                name="transformkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("params", hv_types.JSONType, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "direction",
            sa.Enum(
                "inbound", "outbound", "both", name="ruledirection", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("description", sqlmodel.AutoString(length=500), nullable=True),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", hv_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("transformation_rule", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rule_conn_type_pos", ["connection_id", "resource_type", "position"], unique=False
        )

    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.AutoString(length=200), nullable=False),
        sa.Column("url", sqlmodel.AutoString(length=1000), nullable=False),
        sa.Column("secret_encrypted", sqlmodel.AutoString(), nullable=False),
        sa.Column("previous_secret_encrypted", sqlmodel.AutoString(), nullable=True),
        sa.Column("previous_secret_expires_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column(
            "algorithm",
            sa.Enum(
                "hmac-sha256",
                "hmac-sha512",
                name="signaturealgorithm",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("event_types", hv_types.JSONType, nullable=False),
        sa.Column("filter_connection_id", sa.Integer(), nullable=True),
        sa.Column("filter_resource_types", hv_types.JSONType, nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("backoff_seconds", hv_types.JSONType, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_delivery_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("last_success_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("failure_streak", sa.Integer(), nullable=False),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", hv_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["filter_connection_id"], ["ehr_connection.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_subscription", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_subscription_active"), ["active"], unique=False
        )

    op.create_table(
        "inbound_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("event_key", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("source", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column("event_type", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("resource_type", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("resource_id", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("patient_ref", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "processed",
                "duplicate",
                "rejected",
                "failed",
                name="inboundstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("rejection_reason", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("received_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("processed_at", hv_types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["connection_id"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["sync_job.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("connection_id", "event_key", name="uq_inbound_conn_key"),
    )
    with op.batch_alter_table("inbound_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_conn_status", ["connection_id", "status", "received_at"], unique=False
        )

    op.create_table(
        "record_error",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("resource_type", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column("remote_id", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("path", sqlmodel.AutoString(length=500), nullable=True),
        sa.Column("message", sqlmodel.AutoString(length=1000), nullable=False),
        sa.Column(
            "severity",
            sa.Enum("error", "warning", name="errorseverity", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["sync_job.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("record_error", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_record_error_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index("ix_record_error_job", ["job_id", "created_at"], unique=False)

    op.create_table(
        "synced_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("resource_type", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column("remote_id", sqlmodel.AutoString(length=200), nullable=False),
        sa.Column("patient_ref", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("base_body", hv_types.JSONType, nullable=True),
        sa.Column("local_body", hv_types.JSONType, nullable=True),
        sa.Column("remote_body", hv_types.JSONType, nullable=True),
        sa.Column("remote_version", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("remote_last_updated", hv_types.UTCDateTime(), nullable=True),
        sa.Column("content_hash", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column("conflict_pending", sa.Boolean(), nullable=False),
        sa.Column("flagged_invalid", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("last_job_id", sa.Integer(), nullable=True),
        sa.Column("last_synced_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", hv_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["last_job_id"], ["sync_job.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "connection_id", "resource_type", "remote_id", name="uq_record_conn_type_remote"
        ),
    )
    with op.batch_alter_table("synced_record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_record_connection_dirty", ["connection_id", "dirty"], unique=False
        )
        batch_op.create_index(
            "ix_record_connection_patient", ["connection_id", "patient_ref"], unique=False
        )

    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column("event_type", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column("event_ref", hv_types.JSONType, nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "delivering",
                "delivered",
                "retrying",
                "failed",
                "cancelled",
                name="deliverystatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempt_log", hv_types.JSONType, nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_ms", sa.Integer(), nullable=True),
        sa.Column("last_error", sqlmodel.AutoString(length=1000), nullable=True),
        sa.Column("next_attempt_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("delivered_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", hv_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["webhook_subscription.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_delivery_sub_event"),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_status_next", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "ix_delivery_sub_created", ["subscription_id", "created_at"], unique=False
        )

    op.create_table(
        "conflict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("resource_type", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "field",
                "stale_write",
                "duplicate",
                name="conflictkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("remote_version", sqlmodel.AutoString(length=64), nullable=True),
        sa.Column("fields", hv_types.JSONType, nullable=False),
        sa.Column("base_values", hv_types.JSONType, nullable=False),
        sa.Column("local_values", hv_types.JSONType, nullable=False),
        sa.Column("remote_values", hv_types.JSONType, nullable=False),
        sa.Column(
            "severity",
            sa.Enum("high", "medium", "low", name="severity", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "open", "resolved", "ignored", name="conflictstatus", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column(
            "strategy",
            sa.Enum(
                "use_local",
                "use_remote",
                "merge",
                "manual",
                "ignore",
                name="resolutionstrategy",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("resolution", hv_types.JSONType, nullable=True),
        sa.Column("reason", sqlmodel.AutoString(length=2000), nullable=True),
        sa.Column("resolved_by", sqlmodel.AutoString(length=200), nullable=True),
        sa.Column("resolved_at", hv_types.UTCDateTime(), nullable=True),
        sa.Column("created_at", hv_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", hv_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["sync_job.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["record_id"], ["synced_record.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_id", "remote_version", "kind", name="uq_conflict_record_ver"),
    )
    with op.batch_alter_table("conflict", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conflict_connection_id"), ["connection_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_conflict_record_id"), ["record_id"], unique=False)
        batch_op.create_index(
            "ix_conflict_status_severity", ["status", "severity", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conflict", schema=None) as batch_op:
        batch_op.drop_index("ix_conflict_status_severity")
        batch_op.drop_index(batch_op.f("ix_conflict_record_id"))
        batch_op.drop_index(batch_op.f("ix_conflict_connection_id"))

    op.drop_table("conflict")
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_sub_created")
        batch_op.drop_index("ix_delivery_status_next")

    op.drop_table("webhook_delivery")
    with op.batch_alter_table("synced_record", schema=None) as batch_op:
        batch_op.drop_index("ix_record_connection_patient")
        batch_op.drop_index("ix_record_connection_dirty")

    op.drop_table("synced_record")
    with op.batch_alter_table("record_error", schema=None) as batch_op:
        batch_op.drop_index("ix_record_error_job")
        batch_op.drop_index(batch_op.f("ix_record_error_connection_id"))

    op.drop_table("record_error")
    with op.batch_alter_table("inbound_event", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_conn_status")

    op.drop_table("inbound_event")
    with op.batch_alter_table("webhook_subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_subscription_active"))

    op.drop_table("webhook_subscription")
    with op.batch_alter_table("transformation_rule", schema=None) as batch_op:
        batch_op.drop_index("ix_rule_conn_type_pos")

    op.drop_table("transformation_rule")
    with op.batch_alter_table("sync_job", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_job_status_created")
        batch_op.drop_index(batch_op.f("ix_sync_job_rq_job_id"))
        batch_op.drop_index(batch_op.f("ix_sync_job_connection_id"))
        batch_op.drop_index("ix_sync_job_connection_created")

    op.drop_table("sync_job")
    op.drop_table("sync_checkpoint")
    with op.batch_alter_table("auth_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_session_user_id"))

    op.drop_table("auth_session")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_token_prefix"))

    op.drop_table("api_token")
    with op.batch_alter_table("ehr_connection", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ehr_connection_vendor"))
        batch_op.drop_index(batch_op.f("ix_ehr_connection_status"))
        batch_op.drop_index(batch_op.f("ix_ehr_connection_name"))

    op.drop_table("ehr_connection")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_target")
        batch_op.drop_index("ix_audit_at")

    op.drop_table("audit_log")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_user_username"))

    op.drop_table("app_user")
