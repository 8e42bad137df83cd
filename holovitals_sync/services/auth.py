"""Users, passwords, sign-in sessions and API tokens, with roles.

Passwords are hashed with argon2; session and API tokens are random, shown once and stored
as SHA-256 hashes. Repeated failed sign-ins lock the account for a while.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from ..models import ActorKind, ApiToken, AuthSession, Role, User
from ..models.types import utcnow
from . import audit, login_guard

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


# Locked, unknown and wrong-password sign-ins answer alike: the same words, the same work.
REFUSED = "wrong username or password (after 5 failures an account is locked for 15 minutes)"


def _guard_redis() -> object | None:
    from .platform.redis import QueueUnavailable, redis_connection

    try:
        return redis_connection()
    except QueueUnavailable:
        return None


def sign_in(session: Session, *, username: str, password: str, ip: str | None) -> tuple[str, User]:
    """Check a password and open a session; returns the session token (shown once).

    Raises:
        login_guard.TooManyAttempts: past the attempt limits, or no hashing slot (429).
        AuthError: refused (wrong password, unknown name, locked or disabled account).
    """
    redis = _guard_redis()
    login_guard.admit(redis, username, ip)
    user = session.exec(select(User).where(User.username == username)).first()
    # Hand the connection back while waiting for a hashing slot: parallel sign-ins holding
    # pooled connections they were not using emptied the pool (500s for everyone).
    session.commit()
    now = utcnow()
    with login_guard.hashing_slot():
        matches = _password_matches(user, password)  # also for locked and unknown: same time
    locked = bool(user and user.locked_until and user.locked_until > now)
    if not (matches and user and user.active and not locked) or not _clear_failures(
        session, user, now
    ):
        _record_failure(user, username, ip, now, "locked" if locked else "denied")
        raise AuthError(REFUSED)
    login_guard.forget(redis, username, ip)
    token = secrets.token_urlsafe(32)
    session.add(AuthSession(token_hash=_hash_token(token), user_id=user.id,
                            expires_at=now + SESSION_LIFETIME, ip=ip))  # fmt: skip
    audit.record(session, actor=audit.Actor(ActorKind.USER, username[:150], ip),
                 action="auth.sign_in", target_type="user", target_id=user.id)  # fmt: skip
    return token, user


def _clear_failures(session: Session, user: User, now: datetime) -> bool:
    """The success: one UPDATE that also re-checks the lock, which a parallel failure may
    have set while this password was being hashed. False: locked meanwhile."""
    table = User.__table__
    done = session.execute(
        sa.update(table)
        .where(
            table.c.id == user.id,
            table.c.active == sa.true(),
            sa.or_(table.c.locked_until.is_(None), table.c.locked_until <= now),
        )
        .values(failed_logins=0, locked_until=None, last_login_at=now)
    )
    return done.rowcount == 1


def _record_failure(
    user: User | None, username: str, ip: str | None, now: datetime, outcome: str
) -> None:
    """Count the failure and lock at the limit, in one statement of its own transaction.

    Read, add one and write back lost counts under parallel guesses (40 at once left
    `failed_logins=3` and no lock); the database adds here, and a locked account's count
    stays as it is until the lock ends.
    """
    from ..db import session_scope

    with session_scope() as own:
        if user is not None:
            table = User.__table__
            reached = table.c.failed_logins + 1 >= MAX_FAILED_LOGINS
            locked = sa.and_(table.c.locked_until.is_not(None), table.c.locked_until > now)
            own.execute(
                sa.update(table)
                .where(table.c.id == user.id)
                .values(
                    failed_logins=sa.case(
                        (locked, table.c.failed_logins),
                        (reached, 0),
                        else_=table.c.failed_logins + 1,
                    ),
                    locked_until=sa.case(
                        (locked, table.c.locked_until),
                        (reached, now + LOCKOUT),
                        else_=table.c.locked_until,
                    ),
                )
            )
        audit.record(
            own,
            actor=audit.Actor(ActorKind.USER, username[:150], ip),
            action="auth.sign_in",
            outcome=outcome,
        )


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
    _touch(AuthSession, int(row.id), "last_seen_at", row.last_seen_at, now)
    return Principal(user.id, user.username, user.role, ActorKind.USER, ip=ip)


# "Last seen" needs no second's precision: refreshed at most this often per session/token.
TOUCH_EVERY = timedelta(minutes=5)


def _touch(
    model: type[AuthSession] | type[ApiToken],
    row_id: int,
    column: str,
    seen: datetime | None,
    now: datetime,
) -> None:
    """Note when a session or token was last used, in a transaction of its own.

    Written in the request's transaction, this made every signed-in request a writer from
    its first line to its last: on SQLite the write lock was held across whatever the
    request did, a connection test waiting on a slow EHR included, and everyone else waited.
    """
    if seen is not None and now - seen < TOUCH_EVERY:
        return
    from ..db import session_scope

    try:
        with session_scope() as own:
            own.execute(sa.update(model).where(model.id == row_id).values({column: now}))
    except sa.exc.OperationalError:  # busy: the next request notes it
        return


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
    _touch(ApiToken, int(row.id), "last_used_at", row.last_used_at, now)
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
