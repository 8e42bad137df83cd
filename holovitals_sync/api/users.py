"""User administration (admins only)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from sqlmodel import select

from ..models import Role, User
from ..services import audit, auth
from ..services.patches import Patch
from .deps import Admin, SessionDep
from .strict import strict_body

router = APIRouter(prefix="/api/users", tags=["users"])


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=12, max_length=1000)
    role: Role = Role.VIEWER


class UserPatch(Patch):
    """Role, active or password; each left out stays as it is (none may be null)."""

    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=12, max_length=1000)


class UserOut(BaseModel):
    id: int
    username: str
    role: Role
    active: bool
    created_at: datetime
    last_login_at: datetime | None
    locked_until: datetime | None


# Request bodies with strict scalars (see api.strict): `true` is not an integer here.
UserBody = strict_body(UserIn)
UserPatchBody = strict_body(UserPatch)


@router.get("", response_model=list[UserOut])
def list_users(_admin: Admin, session: SessionDep) -> list[User]:
    """Every user."""
    return list(session.exec(select(User).order_by(User.username)))


@router.post("", response_model=UserOut, status_code=201)
def create_user(body: UserBody, admin: Admin, session: SessionDep) -> User:
    """Create a user."""
    try:
        return auth.create_user(session, username=body.username, password=body.password,
                                role=body.role, actor=admin.actor)  # fmt: skip
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None


@router.patch("/{user_id}", response_model=UserOut)
def update_user(user_id: int, body: UserPatchBody, admin: Admin, session: SessionDep) -> User:
    """Change a user's role, disable or enable them, or set a new password."""
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(404, "no such user")
    changes = body.model_dump(exclude_unset=True, exclude={"password"})
    user.sqlmodel_update(changes)
    if body.password:
        user.password_hash = auth.hash_password(body.password)
        user.failed_logins, user.locked_until = 0, None
    session.add(user)
    fields = sorted(changes) + (["password"] if body.password else [])
    audit.record(session, actor=admin.actor, action="user.update", target_type="user",
                 target_id=user.id, details={"fields": fields})  # fmt: skip
    return user
