"""The dashboard's session comes from the websocket handshake's cookie and stays on the server.

A root state is given the router data of a socket event as Reflex's event processor gives it
(`_update_router_vars`): the handshake's headers, with the HttpOnly `hv_session` cookie in
the Cookie header, and the page's URL. What the browser receives is the state serialized as
Reflex sends it (`format.json_dumps` of the whole state and of a delta).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from reflex.state import State
from reflex_base.constants import RouteVar
from reflex_base.utils import format

import holovitals_sync.holovitals_sync  # noqa: F401 - registers every page and State of the app
from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import Role
from holovitals_sync.services import auth
from holovitals_sync.ui.state.session import SessionState
from holovitals_sync.ui.state.sign_in import SignInState
from tests.conftest import REDIS_TEST_URL
from tests.factories import PASSWORD, make_user


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch, sqlite_url: str, redis_client) -> Iterator[str]:
    """A real session of the operator `ada`."""
    migrations.upgrade(sqlite_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    get_settings.cache_clear()
    get_engine.cache_clear()
    with session_scope() as session:
        make_user(session, "ada", Role.OPERATOR)
    with session_scope() as session:
        value, _user = auth.sign_in(session, username="ada", password=PASSWORD, ip=None)
    yield value
    get_engine().dispose()


def _tab(url: str, cookie: str = "") -> State:
    """One tab's state tree after a socket event from the page at `url`."""
    root = State(_reflex_internal_init=True)
    headers = {"origin": "http://localhost:3000", "host": "localhost:8000", "cookie": cookie}
    event = {
        RouteVar.HEADERS: headers,
        RouteVar.ORIGIN: url,
        RouteVar.PATH: url.split("?")[0],
        RouteVar.CLIENT_IP: "127.0.0.1",
    }
    root.router_data = root._update_router_vars(event, {})
    return root


def _sub(root: State, cls: type) -> object:
    return root.get_substate(cls.get_full_name().split("."))


def test_the_session_is_read_from_the_handshake_cookie_and_never_sent_back(token):
    root = _tab("/audit", f"theme=dark; hv_session={token}; other=1")
    session = _sub(root, SessionState)
    assert asyncio.run(SessionState.guard.fn(session)) is None
    assert (session.username, session.role) == ("ada", "operator")
    # Everything the browser gets: the whole state (hydration) and the change just made.
    for sent in (format.json_dumps(root.dict()), format.json_dumps(root.get_delta())):
        assert token not in sent
        assert "hv_session" not in sent
    # No state of the app keeps anything in browser storage (an rx.Cookie var, say).
    states, todo = [], [State]
    while todo:
        states.append(todo.pop())
        todo.extend(states[-1].get_substates())
    assert len(states) > 10
    for state in states:
        assert not [name for name in state.get_fields() if state._is_client_storage(name)], state


def test_no_cookie_or_a_revoked_one_is_sent_to_sign_in(token):
    for cookie in ("", "theme=dark", "hv_session=made-up", f"hvs_session={token}"):
        session = _sub(_tab("/conflicts", cookie), SessionState)
        redirect = asyncio.run(SessionState.guard.fn(session))
        assert "/signin?next=/conflicts" in str(redirect.args), cookie
        assert (session.username, session.role) == ("", "")
    # Signed in through the handshake's cookie; once the session is revoked (signed out in
    # another tab), the same connection is sent to sign in at its next protected load.
    session = _sub(_tab("/", f"hv_session={token}"), SessionState)
    assert asyncio.run(SessionState.guard.fn(session)) is None
    assert session.role == "operator"
    with session_scope() as db:
        auth.sign_out(db, token)
    assert asyncio.run(SessionState.guard.fn(session)) is not None
    assert (session.username, session.role) == ("", "")


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        (
            "?error=refused",
            "Wrong username or password (after 5 failures an account is locked for 15 minutes).",
        ),
        ("?error=too_many&retry=42", "Too many sign-in attempts; try again in 42 s."),
        ("?error=too_many&retry=<b>", "Too many sign-in attempts; try again later."),
        ("?error=busy", "Sign-in is busy; try again in a moment."),
        ("?error=missing", "Enter your username and password."),
        ("?error=whatever", "Sign-in failed; try again."),
    ],
)
def test_the_sign_in_page_says_why_the_last_try_failed(query, shown):
    page = _sub(_tab(f"/signin{query}"), SignInState)
    assert page.error == shown


def test_the_sign_in_page_passes_on_where_to_go_next():
    assert (
        _sub(_tab("/signin?next=%2Fconflicts%3Fstatus%3Dopen"), SignInState).next_path
        == "/conflicts?status=open"
    )
    plain = _sub(_tab("/signin"), SignInState)
    assert (plain.next_path, plain.error) == ("/", "")
