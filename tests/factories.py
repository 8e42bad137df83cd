"""Test data factories: users, tokens and connections through the real services."""

from __future__ import annotations

from sqlmodel import Session

from holovitals_sync.models import AuthMethod, EHRConnection, Role, Vendor
from holovitals_sync.services import audit, auth
from holovitals_sync.services.connections import ConnectionIn, create_connection

PASSWORD = "correct horse battery staple"
SYSTEM = audit.Actor.system("tests")


def make_user(session: Session, username: str, role: Role) -> auth.Principal:
    user = auth.create_user(session, username=username, password=PASSWORD, role=role,
                            actor=SYSTEM)  # fmt: skip
    return auth.Principal(user.id, user.username, user.role, via=audit.ActorKind.USER)


def make_token(session: Session, owner: auth.Principal, role: Role | None = None) -> str:
    token, _ = auth.create_api_token(session, owner=owner, name=f"{owner.username}-token",
                                     role=role or owner.role)  # fmt: skip
    return token


def make_connection(session: Session, name: str = "General Hospital", **overrides) -> EHRConnection:
    data = {
        "name": name,
        "vendor": Vendor.GENERIC,
        "base_url": "https://fhir.example.org/r4",
        "client_id": "hv-client",
        "auth_method": AuthMethod.CLIENT_SECRET_BASIC,
        "client_secret": "factory-secret-value",
    } | overrides
    return create_connection(session, data=ConnectionIn(**data), actor=SYSTEM)
