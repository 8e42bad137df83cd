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
    response = world.client.post(
        "/api/auth/login", json={"username": "operator", "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json() == {"username": "operator", "role": "operator", "via": "session"}
    assert "hv_session" in response.cookies
    assert world.client.get("/api/auth/me").json()["username"] == "operator"
    world.client.post("/api/auth/logout")
    world.client.cookies.clear()
    assert world.client.get("/api/auth/me").status_code == 401


def test_wrong_password_is_refused_and_audited(world):
    response = world.client.post("/api/auth/login", json={"username": "viewer", "password": "nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    with session_scope() as session:
        entry = session.exec(select(AuditLog).order_by(AuditLog.seq.desc())).first()
    assert (entry.action, entry.outcome, entry.actor) == ("auth.sign_in", "denied", "viewer")
    assert "nope" not in str(entry.details)


def test_lock_out_after_repeated_failures(world):
    for _ in range(auth.MAX_FAILED_LOGINS):
        world.client.post("/api/auth/login", json={"username": "viewer", "password": "bad"})
    response = world.client.post(
        "/api/auth/login", json={"username": "viewer", "password": PASSWORD}
    )
    assert response.status_code == 401
    assert "locked" in response.json()["error"]["message"]
    with session_scope() as session:
        user = session.exec(select(User).where(User.username == "viewer")).one()
        assert user.locked_until is not None
        user.locked_until = utcnow() - timedelta(seconds=1)  # the lock-out has passed
        session.add(user)
    assert (
        world.client.post(
            "/api/auth/login", json={"username": "viewer", "password": PASSWORD}
        ).status_code
        == 200
    )


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


# -- the dashboard's sign-in and sign-out forms (HTML forms posted by the browser) ----------

DASHBOARD = "http://localhost:3000"  # the default dashboard origin (allowed_origins)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _form_login(world, origin: str | None = DASHBOARD, **fields: str):
    headers = {"Origin": origin} if origin else {}
    return world.client.post("/api/auth/login", data=fields, headers=headers,
                             follow_redirects=False)  # fmt: skip


def _set_cookie(response) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_the_sign_in_form_is_answered_303_with_an_httponly_strict_cookie(world):
    answer = _form_login(
        world, username="operator", password=PASSWORD, next="/conflicts?status=open"
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{DASHBOARD}/conflicts?status=open"
    cookie = _set_cookie(answer)
    assert cookie.startswith("hv_session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= attributes and "secure" not in attributes
    assert "samesite=strict" in cookie.lower() and "path=/;" in cookie.lower() + ";"
    # The cookie is the session: the API knows who it is, and an audit entry says so.
    me = world.client.get("/api/auth/me").json()
    assert (me["username"], me["role"]) == ("operator", "operator")
    with session_scope() as session:
        entry = session.exec(select(AuditLog).order_by(AuditLog.seq.desc())).first()
    assert (entry.action, entry.actor) == ("auth.sign_in", "operator")
    # Scripts keep signing in with JSON and get 200.
    world.client.cookies.clear()
    answer = world.client.post(
        "/api/auth/login", json={"username": "operator", "password": PASSWORD}
    )
    assert answer.status_code == 200 and "httponly" in _set_cookie(answer).lower()


def test_the_sign_in_form_goes_back_to_the_dashboard_it_came_from(world):
    where = {
        "http://127.0.0.1:3000": "http://127.0.0.1:3000/audit",  # the Origin, when allowed
        None: f"{DASHBOARD}/audit",  # no Origin (no browser): the first dashboard origin
    }
    for origin, location in where.items():
        answer = _form_login(world, origin, username="admin", password=PASSWORD, next="/audit")
        assert answer.headers["location"] == location, origin
    referer = world.client.post(
        "/api/auth/login",
        data={"username": "admin", "password": PASSWORD},
        headers={"Referer": "http://127.0.0.1:3000/signin?next=/x"},
        follow_redirects=False,
    )
    assert referer.headers["location"] == "http://127.0.0.1:3000/"


def test_the_sign_in_form_goes_only_to_a_path_on_the_dashboard(world):
    for target in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/a b",
        "/x\r\nSet-Cookie: a=b",
        "",
        "/signin",
        "evil.example",
    ]:
        answer = _form_login(world, username="viewer", password=PASSWORD, next=target)
        assert answer.headers["location"] == f"{DASHBOARD}/", target


def test_a_refused_form_goes_back_to_sign_in_with_the_reason_only(world):
    answer = _form_login(world, username="viewer", password="wrong-Pa55", next="/audit")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{DASHBOARD}/signin?error=refused&next=%2Faudit"
    assert "set-cookie" not in answer.headers
    missing = _form_login(world, username=" ", password="", next="/audit")
    assert missing.headers["location"] == f"{DASHBOARD}/signin?error=missing&next=%2Faudit"
    with session_scope() as session:  # counted and audited as any failed sign-in
        entry = session.exec(select(AuditLog).order_by(AuditLog.seq.desc())).first()
        assert (entry.action, entry.outcome) == ("auth.sign_in", "denied")
        assert session.exec(select(User).where(User.username == "viewer")).one().failed_logins == 1


def test_too_many_form_sign_ins_and_a_busy_server_say_so(world, monkeypatch):
    from holovitals_sync.services import login_guard

    for _ in range(login_guard.ACCOUNT_ATTEMPTS):
        _form_login(world, username="nobody", password="guess")
    answer = _form_login(world, username="nobody", password="guess", next="/audit")
    location = answer.headers["location"]
    assert location.startswith(f"{DASHBOARD}/signin?error=too_many&retry="), location
    assert location.endswith("&next=%2Faudit") and "guess" not in location
    # Every hashing slot taken: the form is answered at once with "busy".
    monkeypatch.setattr(login_guard, "HASH_WAIT", 0.01)
    for _ in range(login_guard.HASH_SLOTS):
        login_guard._slots.acquire()
    try:
        answer = _form_login(world, username="admin", password=PASSWORD)
    finally:
        for _ in range(login_guard.HASH_SLOTS):
            login_guard._slots.release()
    assert answer.headers["location"] == f"{DASHBOARD}/signin?error=busy&next=%2F"


def test_a_sign_in_form_from_another_site_is_refused(world):
    answer = _form_login(world, "http://evil.example", username="admin", password=PASSWORD)
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers


def test_the_sign_out_form_revokes_the_session_and_deletes_the_cookie(world):
    _form_login(world, username="admin", password=PASSWORD)
    old = world.client.cookies["hv_session"]
    answer = world.client.post(
        "/api/auth/logout",
        content=b"",
        follow_redirects=False,
        headers={**FORM, "Origin": DASHBOARD},
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{DASHBOARD}/signin"
    cookie = _set_cookie(answer).lower()
    assert cookie.startswith('hv_session=""') and "max-age=0" in cookie
    assert "hv_session" not in world.client.cookies
    # The old cookie, sent again, is refused: the session was revoked, not only forgotten.
    replay = world.client.get("/api/auth/me", headers={"Cookie": f"hv_session={old}"})
    assert replay.status_code == 401
    # A script's sign-out is still 204.
    _form_login(world, username="admin", password=PASSWORD)
    assert world.client.post("/api/auth/logout").status_code == 204


def test_production_cookies_are_secure(world, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_ENVIRONMENT", "production")
    from holovitals_sync.config import get_settings

    get_settings.cache_clear()
    answer = _form_login(world, username="admin", password=PASSWORD)
    assert "secure" in _set_cookie(answer).lower()


def test_successes_from_one_address_never_run_out_but_failures_do(world):
    """A hospital NAT: many people sign in from one address. Successes give their attempt
    back; failures (a spray across accounts) still meet the per-address limit."""
    from holovitals_sync.services import login_guard

    names = ["admin", "operator", "viewer"]
    for n in range(login_guard.ADDRESS_ATTEMPTS + 3):
        ok = world.client.post(
            "/api/auth/login", json={"username": names[n % 3], "password": PASSWORD}
        )
        assert ok.status_code == 200, (n, ok.text)
    answers = [
        world.client.post(
            "/api/auth/login", json={"username": f"nobody-{n}", "password": "guess"}
        ).status_code
        for n in range(login_guard.ADDRESS_ATTEMPTS + 1)
    ]
    assert answers[: login_guard.ADDRESS_ATTEMPTS] == [401] * login_guard.ADDRESS_ATTEMPTS
    assert answers[-1] == 429
