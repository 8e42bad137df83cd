"""Sign-in, lock-out, sessions and API tokens over the real API and database."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import ApiToken, AuditLog, AuthSession, Role, User
from holovitals_sync.models.types import utcnow
from holovitals_sync.services import auth
from tests.factories import PASSWORD


def test_sign_in_sets_session_cookie_and_me_works(world):
    response = world.client.post("/api/auth/login", json={"username": "operator",
                                                          "password": PASSWORD})
    assert response.status_code == 200
    assert response.json() == {"username": "operator", "role": "operator", "via": "session"}
    assert "hv_session" in response.cookies
    assert world.client.get("/api/auth/me").json()["username"] == "operator"
    world.client.post("/api/auth/logout")
    world.client.cookies.clear()
    assert world.client.get("/api/auth/me").status_code == 401


def test_wrong_password_is_refused_and_audited(world):
    response = world.client.post("/api/auth/login", json={"username": "viewer",
                                                          "password": "nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    with session_scope() as session:
        entry = session.exec(select(AuditLog).order_by(AuditLog.seq.desc())).first()
    assert (entry.action, entry.outcome, entry.actor) == ("auth.sign_in", "denied", "viewer")
    assert "nope" not in str(entry.details)


def test_lock_out_after_repeated_failures(world):
    for _ in range(auth.MAX_FAILED_LOGINS):
        world.client.post("/api/auth/login", json={"username": "viewer", "password": "bad"})
    response = world.client.post("/api/auth/login", json={"username": "viewer",
                                                          "password": PASSWORD})
    assert response.status_code == 401
    assert "locked" in response.json()["error"]["message"]
    with session_scope() as session:
        user = session.exec(select(User).where(User.username == "viewer")).one()
        assert user.locked_until is not None
        user.locked_until = utcnow() - timedelta(seconds=1)  # the lock-out has passed
        session.add(user)
    assert world.client.post("/api/auth/login", json={"username": "viewer",
                                                      "password": PASSWORD}).status_code == 200


def test_expired_session_is_refused(world):
    world.client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
    with session_scope() as session:
        for row in session.exec(select(AuthSession)):
            row.expires_at = utcnow() - timedelta(seconds=1)
            session.add(row)
    assert world.client.get("/api/auth/me").status_code == 401


def test_token_shown_once_stored_hashed(world):
    headers = world.headers("operator")
    created = world.client.post("/api/auth/tokens", json={"name": "ci", "role": "viewer"},
                                headers=headers)  # fmt: skip
    assert created.status_code == 201
    token = created.json()["token"]
    listed = world.client.get("/api/auth/tokens", headers=headers)
    assert token not in listed.text
    with session_scope() as session:
        assert not session.exec(select(ApiToken).where(ApiToken.token_hash == token)).first()
    me = world.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me == {"username": "operator", "role": "viewer", "via": "token"}


def test_token_cannot_outrank_its_user(world):
    response = world.client.post("/api/auth/tokens", json={"name": "x", "role": "admin"},
                                 headers=world.headers("viewer"))  # fmt: skip
    assert response.status_code == 403


def test_revoked_token_is_refused_again_and_again(world):
    headers = world.headers("admin")
    created = world.client.post("/api/auth/tokens", json={"name": "tmp", "role": "operator"},
                                headers=headers).json()  # fmt: skip
    bearer = {"Authorization": f"Bearer {created['token']}"}
    assert world.client.get("/api/auth/me", headers=bearer).status_code == 200
    assert world.client.delete(f"/api/auth/tokens/{created['id']}",
                               headers=headers).status_code == 204  # fmt: skip
    for _ in range(2):  # replaying the revoked token never works
        assert world.client.get("/api/auth/me", headers=bearer).status_code == 401


def test_unknown_and_expired_tokens_are_refused(world):
    bad = {"Authorization": "Bearer hvs_not-a-token"}
    assert world.client.get("/api/auth/me", headers=bad).status_code == 401
    with session_scope() as session:
        for row in session.exec(select(ApiToken)):
            row.expires_at = utcnow() - timedelta(seconds=1)
            session.add(row)
    assert world.client.get("/api/auth/me", headers=world.headers("admin")).status_code == 401


def test_demoted_user_token_loses_power(world):
    with session_scope() as session:
        user = session.exec(select(User).where(User.username == "admin")).one()
        user.role = Role.VIEWER
        session.add(user)
    response = world.client.get("/api/users", headers=world.headers("admin"))
    assert response.status_code == 403
