"""Alembic environment: the models' metadata, the URL from settings (or the caller)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import holovitals_sync.models  # noqa: F401  (registers every table)
from holovitals_sync.config import get_settings
from holovitals_sync.db import create_db_engine, engine_for
from holovitals_sync.models.types import UTCDateTime

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render the project's column types by name, so migrations read like the models."""
    if type_ != "type":
        return False
    if isinstance(obj, AutoString):
        length = f"length={obj.length}" if obj.length else ""
        return f"sqlmodel.AutoString({length})"
    if isinstance(obj, UTCDateTime):
        return "hv_types.UTCDateTime()"
    if isinstance(obj, sa.JSON) and getattr(obj, "_variant_mapping", None):
        return "hv_types.JSONType"
    return False


RENDER_OPTIONS = {
    "target_metadata": target_metadata,
    "compare_type": True,
    "render_as_batch": True,  # SQLite cannot ALTER most things; batch mode copies tables
    "render_item": render_item,
}


def _url() -> str | None:
    return config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or None


def run_offline() -> None:
    context.configure(
        url=_url() or get_settings().effective_database_url,
        literal_binds=True,
        **RENDER_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **RENDER_OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = _url()
    engine = create_db_engine(url) if url else engine_for(get_settings())
    with engine.connect() as conn:
        context.configure(connection=conn, **RENDER_OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
