"""The demo connection `up --demo` creates: the sandbox EHR with its well-known client."""

from __future__ import annotations

from sqlmodel import Session, select

from ..models import AuthMethod, ConnectionStatus, EHRConnection, Vendor
from . import audit
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
