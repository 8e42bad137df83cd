"""The demo connection `up --demo` creates: the sandbox EHR with its well-known client."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlmodel import Session, select

from ..models import AuthMethod, ConnectionStatus, EHRConnection, Role, User, Vendor
from . import audit
from .auth import create_user
from .connections import ConnectionIn, create_connection

DEMO_NAME = "Sandbox EHR (demo)"
# The sandbox's built-in demo client (holovitals_sync.sandbox.config).
DEMO_CLIENT_ID = "holovitals-demo"
DEMO_CLIENT_SECRET = "demo-secret"


def ensure_demo_connection(session: Session, *, base_url: str) -> EHRConnection:
    """Create the demo connection once; later starts keep it (and any edits made to it)."""
    existing = session.exec(select(EHRConnection).where(EHRConnection.name == DEMO_NAME)).first()
    if existing is not None:
        return existing
    row = create_connection(
        session,
        data=ConnectionIn(
            name=DEMO_NAME,
            vendor=Vendor.GENERIC,
            base_url=base_url,
            client_id=DEMO_CLIENT_ID,
            auth_method=AuthMethod.CLIENT_SECRET_BASIC,
            client_secret=DEMO_CLIENT_SECRET,
            scopes="system/*.read system/*.write",
        ),
        actor=audit.Actor.system("demo"),
    )
    row.status = ConnectionStatus.ACTIVE
    session.add(row)
    return row


# The sandbox's ADT sender names itself so (`sandbox.config.SandboxConfig.adt_*`).
DEMO_FEED = ("SANDBOXADT", "SANDBOX")


def ensure_demo_feed(session: Session, connection: EHRConnection) -> None:
    """Map the sandbox's ADT feed to the demo connection once (an admin may unmap it)."""
    from ..models import HL7Feed

    if session.exec(select(HL7Feed).where(HL7Feed.connection_id == connection.id)).first():
        return
    session.add(
        HL7Feed(
            connection_id=connection.id,
            sending_application=DEMO_FEED[0],
            sending_facility=DEMO_FEED[1],
        )
    )


DEMO_USERS = (Role.ADMIN, Role.OPERATOR, Role.VIEWER)
DEMO_USERS_FILE = "demo-users.txt"


def ensure_demo_users(session: Session, *, data_dir: Path) -> dict[str, str]:
    """One user per role, named after it, with a random password kept in the data directory.

    Returns the passwords of the users created now (empty on later starts); the file
    `<data_dir>/demo-users.txt` (mode 0600) keeps them for the next start.
    """
    created: dict[str, str] = {}
    for role in DEMO_USERS:
        if session.exec(select(User).where(User.username == role.value)).first():
            continue
        password = secrets.token_urlsafe(12)
        create_user(session, username=role.value, password=password, role=role,
                    actor=audit.Actor.system("demo"))  # fmt: skip
        created[role.value] = password
    if created:
        path = data_dir / DEMO_USERS_FILE
        lines = [f"{name} {password}\n" for name, password in created.items()]
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as out:
            out.writelines(lines)
    return created


def read_demo_users(data_dir: Path) -> dict[str, str]:
    """The demo users' passwords as `ensure_demo_users` wrote them."""
    path = data_dir / DEMO_USERS_FILE
    if not path.exists():
        return {}
    pairs = (line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)
    return {name: password for name, password in pairs}
