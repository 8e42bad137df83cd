"""Users, passwords, sign-in sessions and API tokens, with roles.

Passwords are hashed with argon2; session and API tokens are random, shown once and stored
as SHA-256 hashes. Repeated failed sign-ins lock the account for a while.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from ..models import ActorKind, ApiToken, AuthSession, Role, User
from ..models.types import utcnow
from . import audit

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=8)
TOKEN_PREFIX = "hvs_"
ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the timing the same.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class AuthError(Exception):
    """Sign-in or token refused; the message is safe to show."""


class PermissionDenied(Exception):
    """The principal's role does not allow the action."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user through a session or through one of their API tokens."""

    user_id: int
    username: str
    role: Role
    via: ActorKind  # USER (session) or TOKEN
    token_id: int | None = None
    ip: str | None = None

    @property
    def actor(self) -> audit.Actor:
        name = self.username if self.token_id is None else f"{self.username}/token:{self.token_id}"
        return audit.Actor(self.via, name, self.ip)

    def allows(self, needed: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[needed]


def require_role(principal: Principal | None, needed: Role) -> Principal:
    """The one permission check every route and mutating event handler goes through."""
    if principal is None:
        raise AuthError("sign in first")
    if not principal.allows(needed):
        raise PermissionDenied(f"this needs the {needed.value} role")
    return principal


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise ValueError("a password needs at least 12 characters")
    return _hasher.hash(password)


def create_user(
    session: Session, *, username: str, password: str, role: Role, actor: audit.Actor
) -> User:
    """Create a user (the username must be new)."""
    if session.exec(select(User).where(User.username == username)).first():
        raise ValueError(f"user {username!r} exists already")
    user = User(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.create", target_type="user",
                 target_id=user.id, details={"role": role.value})  # fmt: skip
    return user


def _password_matches(user: User | None, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and bool(user)
    except (VerificationError, InvalidHashError):
        return False


def sign_in(session: Session, *, username: str, password: str, ip: str | None) -> tuple[str, User]:
    """Check a password and open a session; returns the session token (shown once)."""
    user = session.exec(select(User).where(User.username == username)).first()
    now = utcnow()
    actor = audit.Actor(ActorKind.USER, username[:150], ip)
    if user and user.locked_until and user.locked_until > now:
        audit.record(session, actor=actor, action="auth.sign_in", outcome="locked")
        session.commit()  # the refusal is recorded even though the caller sees an error
        raise AuthError("account locked after repeated failures; try again later")
    if not _password_matches(user, password) or not (user and user.active):
        if user:
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILED_LOGINS:
                user.locked_until, user.failed_logins = now + LOCKOUT, 0
            session.add(user)
        audit.record(session, actor=actor, action="auth.sign_in", outcome="denied")
        session.commit()  # the failure counts towards the lock-out even though we raise
        raise AuthError("wrong username or password")
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    token = secrets.token_urlsafe(32)
    session.add(user)
    session.add(AuthSession(token_hash=_hash_token(token), user_id=user.id,
                            expires_at=now + SESSION_LIFETIME, ip=ip))  # fmt: skip
    audit.record(session, actor=actor, action="auth.sign_in", target_type="user",
                 target_id=user.id)  # fmt: skip
    return token, user


def sign_out(session: Session, token: str) -> None:
    row = session.exec(select(AuthSession).where(AuthSession.token_hash == _hash_token(token)))
    found = row.first()
    if found and found.revoked_at is None:
        found.revoked_at = utcnow()
        session.add(found)


def _active_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise AuthError("the account is disabled")
    return user


def principal_from_session(session: Session, token: str, ip: str | None = None) -> Principal:
    """Resolve a session token; expired or revoked sessions are refused."""
    row = session.exec(
        select(AuthSession).where(AuthSession.token_hash == _hash_token(token))
    ).first()
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise AuthError("session expired; sign in again")
    user = _active_user(session, row.user_id)
    row.last_seen_at = now
    session.add(row)
    return Principal(user.id, user.username, user.role, ActorKind.USER, ip=ip)


def create_api_token(
    session: Session,
    *,
    owner: Principal,
    name: str,
    role: Role,
    expires_at: datetime | None = None,
) -> tuple[str, ApiToken]:
    """Create a token for the owner, scoped to a role no higher than theirs; shown once."""
    if not owner.allows(role):
        raise PermissionDenied("a token cannot have a higher role than its user")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, prefix=token[:12], token_hash=_hash_token(token), role=role,
                   user_id=owner.user_id, expires_at=expires_at)  # fmt: skip
    session.add(row)
    session.flush()
    audit.record(session, actor=owner.actor, action="token.create", target_type="api_token",
                 target_id=row.id, details={"role": role.value})  # fmt: skip
    return token, row


def principal_from_api_token(session: Session, token: str, ip: str | None = None) -> Principal:
    """Resolve a bearer token; unknown, expired or revoked tokens are refused."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == _hash_token(token))).first()
    now = utcnow()
    if row is None or row.revoked_at is not None:
        raise AuthError("invalid or revoked token")
    if row.expires_at is not None and row.expires_at <= now:
        raise AuthError("token expired")
    user = _active_user(session, row.user_id) if row.user_id else None
    if user is None:
        raise AuthError("invalid or revoked token")
    row.last_used_at = now
    session.add(row)
    # A token never has more power than its user has now (the user may have been demoted).
    role = row.role if ROLE_RANK[row.role] <= ROLE_RANK[user.role] else user.role
    return Principal(user.id, user.username, role, ActorKind.TOKEN, token_id=row.id, ip=ip)


def revoke_api_token(session: Session, *, actor: Principal, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != actor.user_id and not actor.allows(Role.ADMIN)):
        raise LookupError("no such token")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        audit.record(session, actor=actor.actor, action="token.revoke",
                     target_type="api_token", target_id=row.id)  # fmt: skip
    return row
