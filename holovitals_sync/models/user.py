"""People who sign in to the dashboard, and API tokens for services and scripts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from .enums import Role
from .types import UTCDateTime, created_at_field, enum_type, time_field


class User(SQLModel, table=True):
    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=150, unique=True, index=True)
    password_hash: str = Field(max_length=300)
    role: Role = Field(default=Role.VIEWER, sa_type=enum_type(Role))
    active: bool = True
    failed_logins: int = 0  # consecutive failures; reset by a successful sign-in
    locked_until: datetime | None = time_field()
    created_at: datetime = created_at_field()
    last_login_at: datetime | None = time_field()


class AuthSession(SQLModel, table=True):
    """A dashboard or API sign-in session; the cookie holds the token, the row its hash."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=128, unique=True)
    user_id: int = Field(foreign_key="app_user.id", ondelete="CASCADE", index=True)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_seen_at: datetime | None = time_field()
    revoked_at: datetime | None = time_field()
    ip: str | None = Field(default=None, max_length=64)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=16, index=True)  # shown in lists to tell tokens apart
    token_hash: str = Field(max_length=128, unique=True)  # sha256; the token is shown once
    role: Role = Field(default=Role.VIEWER, sa_type=enum_type(Role))
    user_id: int | None = Field(default=None, foreign_key="app_user.id", ondelete="CASCADE")
    created_at: datetime = created_at_field()
    expires_at: datetime | None = time_field()
    last_used_at: datetime | None = time_field()
    revoked_at: datetime | None = time_field()
