"""The permission matrix of the dashboard: every event handler, as nobody and as each role.

Which handlers: every State class of the app (the app module is imported, then the state tree
under `reflex.state.State` is walked), every entry of its `event_handlers`. Each one either
declares itself in code, `@requires(Role.X)` (it changes data, or opens a form that does) or
`@reads(Role.X)` (it only reads), see `ui/state/session.py`, or is listed below as UI-only
(it touches nothing but the tab's own state). A handler that is none of these fails
`test_every_handler_is_declared`, so a new one cannot slip past the matrix. (Signing in and
out are no handlers: HTML forms posted to the API, tests/integration/api/test_auth.py.)

How a handler runs here, without a browser or websocket: a fresh root state
(`State(_reflex_internal_init=True)`) builds the whole state tree of one tab; its router gets
the headers of a websocket handshake whose Cookie header carries the `hv_session` cookie of a
real session (`auth.sign_in`), or no session cookie, as the event processor gives them to the
state; the handler's own
function (`EventHandler.fn`) is called on the substate with the arguments the page sends, and
whatever it returns or yields is collected. `get_state` finds the sibling SessionState in the
same tree, so `principal_for` runs exactly as in the app, against a real SQLite database (a
copy of one migrated template per test) with the real services and the test Redis database.
Background handlers (`LiveState.watch*`) use `async with self`, which in the app is Reflex's
StateProxy; here `Unlocked` (tests/integration/ui/tabs.py) stands in (one task, so nothing to
lock) and the watcher runs until it has subscribed to Redis.

What is asserted, per handler and caller:
- refused callers (nobody, or a role below the declared one) get what the page shows, the
  sign-in redirect or the "this needs the X role" toast, and stored data (every table, and the
  keys of the Redis database) is exactly as before;
- allowed callers are not refused; a `reads` handler leaves stored data as it was, and a
  `requires` handler whose call below is complete enough to succeed changes it, which shows
  the snapshot would notice a refused caller getting through.
The browser side (controls hidden for viewers) is in tests/e2e.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from reflex.state import BaseState, State
from reflex_base.constants import RouteVar
from reflex_base.event import EventHandler, EventSpec

import holovitals_sync.holovitals_sync  # noqa: F401 - registers every page and State of the app
from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import (
    Alert,
    AlertKind,
    DeliveryStatus,
    HL7Feed,
    JobStatus,
    Role,
    SyncedRecord,
)
from holovitals_sync.services import auth
from holovitals_sync.services.platform.redis import redis_connection
from holovitals_sync.services.records import local_etag
from holovitals_sync.services.transformation import DataTransformationService
from holovitals_sync.services.transformation.schemas import RuleIn
from holovitals_sync.ui.state import validation_rules as validation_ui
from holovitals_sync.ui.state.session import permission_of
from tests.conftest import REDIS_TEST_URL
from tests.factories import (
    PASSWORD,
    SYSTEM,
    make_conflict,
    make_connection,
    make_delivery,
    make_job,
    make_record,
    make_subscription,
    make_user,
)
from tests.integration.ui.tabs import Unlocked

CALLERS: list[Role | None] = [None, Role.VIEWER, Role.OPERATOR, Role.ADMIN]
RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
# Columns a permitted look-up itself writes: resolving a session stamps when it was last seen.
VOLATILE = {("auth_session", "last_seen_at")}


def _app_states() -> list[type[BaseState]]:
    found, todo = [], list(State.get_substates())
    while todo:
        cls = todo.pop()
        todo.extend(cls.get_substates())
        if cls.__module__.startswith("holovitals_sync."):
            found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


HANDLERS: dict[str, EventHandler] = {
    f"{cls.__name__}.{name}": handler
    for cls in _app_states() for name, handler in cls.event_handlers.items()
}  # fmt: skip
DECLARED = sorted(k for k, h in HANDLERS.items() if permission_of(h.fn) is not None)


@dataclasses.dataclass
class World:
    """Rows every handler can be pointed at; the same ids in every copy of the template."""

    cid: int = 0  # a connection (its EHR: a closed port on loopback)
    jid: int = 0  # a queued job
    fjid: int = 0  # a failed job
    sid: int = 0  # a webhook subscription (to a private address: the SSRF guard refuses it)
    did: int = 0  # a failed delivery of it
    xid: int = 0  # an open conflict
    aid: int = 0  # an open alert
    rid: int = 0  # a transformation rule of the connection
    vid: str = ""  # a custom validation rule of the connection
    fid: int = 0  # an HL7 feed of the connection
    rec: str = "p1"  # a Patient record of the connection (its remote id)
    etag: str = ""  # the version of HoloVitals' copy of it
    tokens: dict[Role, str] = dataclasses.field(default_factory=dict)  # session cookies


@dataclasses.dataclass(frozen=True)
class Call:
    """How the page calls a handler: its arguments, and state the page would have set first."""

    args: Callable[[World], tuple[Any, ...]] = lambda w: ()
    prepare: Callable[[Any, World], None] = lambda state, w: None
    changes: bool = False  # the first allowed caller's call changes stored data


def _set(**values: Any) -> Callable[[Any, World], None]:
    """State the page had set: a value, or a function of the world for ids."""

    def prepare(state: Any, world: World) -> None:
        for name, value in values.items():
            setattr(state, name, value(world) if callable(value) else value)

    return prepare


CID = _set(selected_id=lambda w: w.cid)
RULES_CID = _set(connection_id=lambda w: w.cid)
GENERIC_FORM = {"name": "Mercy West", "base_url": "https://fhir.mercy.example/r4",
                "client_id": "hv", "auth_method": "client_secret_basic",
                "client_secret": "s3cret-value", "scopes": "system/*.rs"}  # fmt: skip
RULE_FORM = {"kind": "redact", "params": '{"path": "text"}', "resource_type": "Patient",
             "direction": "inbound", "description": "drop the narrative"}  # fmt: skip
VALIDATION_FORM = {"check": "range", "name": "Heart rate", "resource_type": "Observation",
                   "path": "valueQuantity.value", "min": "30", "max": "220",
                   "pattern": "", "expression": "", "severity": "error"}  # fmt: skip
WEBHOOK_FORM = {
    "name": "Ward feed",
    "url": "https://93.184.215.14/hook",
    "connection": "any",
    "events": {"patient.updated": True},
    "timeout": "10",
    "retries": "5",
}

CALLS: dict[str, Call] = {
    "SessionState.guard": Call(),
    "AlertsState.load": Call(),
    "AlertsState.filter_status": Call(lambda w: ("open",)),
    "AlertsState.page": Call(lambda w: (-1,)),
    "AlertsState.acknowledge": Call(lambda w: (w.aid,), changes=True),
    "AuditState.load": Call(),
    "AuditState.apply": Call(lambda w: ({"actor": "admin"},)),
    "AuditState.clear": Call(),
    "AuditState.older": Call(prepare=_set(next_before=5)),
    "AuditState.newer": Call(),
    "AuditState.verify": Call(),
    "ConflictsState.load": Call(),
    "ConflictsState.set_filter": Call(lambda w: ("status", "open")),
    "ConflictsState.page": Call(lambda w: (True,)),
    "ConflictModalState.open_conflict": Call(lambda w: (str(w.xid),)),
    "ConflictModalState.submit": Call(
        prepare=_set(
            conflict_id=lambda w: w.xid, strategy="use_remote", reason="checked with the ward"
        ),
        changes=True,
    ),
    "ConnectionsState.load": Call(),
    "ConnectionsState.set_search": Call(lambda w: ("General",)),
    "ConnectionsState.turn_page": Call(lambda w: (0,)),
    "ConnectionsState.select": Call(lambda w: (str(w.cid),)),
    "ConnectionsState.open_add": Call(),
    "ConnectionsState.open_edit": Call(lambda w: (str(w.cid),)),
    "ConnectionsState.save_form": Call(
        prepare=_set(form_vendor="generic", form_id=0, _form_values=GENERIC_FORM), changes=True
    ),
    "ConnectionsState.set_status": Call(lambda w: ("paused",), CID, changes=True),
    "ConnectionsState.run_test": Call(prepare=CID, changes=True),
    "ConnectionsState.generate_key": Call(prepare=CID, changes=True),
    "ConnectionsState.save_schedule": Call(
        prepare=_set(
            selected_id=lambda w: w.cid,
            schedule_expr="0 * * * *",
            concurrency="3",
            sweep_expr="15 3 * * *",
        ),
        changes=True,
    ),
    "RecordsState.load": Call(),
    "RecordsState.set_connection": Call(lambda w: (str(w.cid),)),
    "RecordsState.set_view": Call(lambda w: ("errors",)),
    "RecordsState.set_filter": Call(lambda w: ("invalid", "flagged")),
    "RecordsState.apply": Call(lambda w: ({"patient": w.rec},)),
    "RecordsState.clear": Call(),
    "RecordsState.page": Call(lambda w: (True,)),
    "RecordsState.errors_page": Call(lambda w: (True,)),
    "RecordState.open_record": Call(lambda w: (str(w.cid), "Patient", w.rec)),
    "RecordState.delete_local": Call(
        prepare=_set(
            summary=lambda w: {"connection_id": str(w.cid), "type": "Patient", "remote_id": w.rec},
            _etag=lambda w: w.etag,
        ),
        changes=True,
    ),
    "JobsState.load": Call(),
    "JobsState.filter_status": Call(lambda w: ("all",)),
    "JobsState.filter_connection": Call(lambda w: ("all",)),
    "JobsState.filter_type": Call(lambda w: ("all",)),
    "JobsState.next_page": Call(),
    "JobsState.previous_page": Call(),
    "JobsState.cancel": Call(lambda w: (w.jid,), changes=True),
    "JobsState.retry": Call(lambda w: (w.fjid,), changes=True),
    "SummaryState.load": Call(),
    "JobDetailState.show": Call(lambda w: (w.jid,)),
    "JobDetailState.records_page": Call(lambda w: (1,)),
    "StartSyncState.submit": Call(
        prepare=_set(connection_id=lambda w: str(w.cid), job_type="incremental"), changes=True
    ),
    "LiveState.watch": Call(),
    "LiveState.watch_alerts": Call(),
    "LiveState.watch_conflicts": Call(),
    "LiveState.watch_webhooks": Call(),
    "RulesState.load_for": Call(lambda w: (w.cid,)),
    "RulesState.open_new": Call(),
    "RulesState.open_edit": Call(lambda w: (str(w.rid),)),
    "RulesState.save_rule": Call(
        prepare=_set(connection_id=lambda w: w.cid, editor_id=0, editor_values=RULE_FORM),
        changes=True,
    ),
    "RulesState.toggle": Call(lambda w: (str(w.rid), False), RULES_CID, changes=True),
    "RulesState.move": Call(lambda w: (str(w.rid), "down"), RULES_CID),  # the only one: stays
    "RulesState.delete": Call(lambda w: (str(w.rid),), RULES_CID, changes=True),
    "RulesState.dry_run": Call(prepare=RULES_CID),
    "WebhooksState.load": Call(),
    "WebhooksState.subs_page": Call(lambda w: (True,)),
    "WebhooksState.deliveries_page": Call(lambda w: (True,)),
    "WebhooksState.filter_deliveries": Call(lambda w: ("status", "all")),
    "WebhooksState.set_active": Call(lambda w: (str(w.sid), False), changes=True),
    "WebhooksState.redeliver": Call(lambda w: (str(w.did),), changes=True),
    "WebhooksState.ask_delete": Call(lambda w: (str(w.sid), "factory")),
    "WebhooksState.confirm_delete": Call(
        prepare=_set(confirm_delete_id=lambda w: str(w.sid)), changes=True
    ),
    "WebhookFormState.open_create": Call(),
    "WebhookFormState.open_edit": Call(lambda w: (str(w.sid),)),
    "WebhookFormState.submit": Call(prepare=_set(sub_id=0, **WEBHOOK_FORM), changes=True),
    "WebhookFormState.rotate_secret": Call(prepare=_set(sub_id=lambda w: w.sid), changes=True),
    "WebhookFormState.send_test": Call(prepare=_set(sub_id=lambda w: w.sid), changes=True),
    "ValidationRulesState.load_for": Call(lambda w: (w.cid,)),
    "HL7FeedState.load_for": Call(lambda w: (w.cid,)),
    "HL7FeedState.refresh": Call(prepare=RULES_CID),
    "HL7FeedState.add_feed": Call(
        prepare=_set(connection_id=lambda w: w.cid, new_application="LABADT"), changes=True
    ),
    "HL7FeedState.remove_feed": Call(lambda w: (str(w.fid),), RULES_CID, changes=True),
    "ValidationRulesState.open_form": Call(prepare=RULES_CID),
    "ValidationRulesState.save_rule": Call(
        prepare=_set(
            connection_id=lambda w: w.cid, form_values={**VALIDATION_FORM, "name": "Pulse"}
        ),
        changes=True,
    ),
    "ValidationRulesState.toggle": Call(lambda w: (w.vid, False), RULES_CID, changes=True),
    "ValidationRulesState.move": Call(lambda w: (w.vid, "down"), RULES_CID),  # the only one
    "ValidationRulesState.delete": Call(lambda w: (w.vid,), RULES_CID, changes=True),
    "ValidationRulesState.run_check": Call(prepare=RULES_CID),
}


# Handlers that change only the tab's own state (dialog open, field typed, choice made): no
# session, no database. Each runs here as nobody, and stored data must stay as it was.
UI_ONLY: dict[str, Call] = {
    "ConnectionsState.close_detail": Call(),
    "ConnectionsState.set_form_vendor": Call(lambda w: ("epic",)),
    "ConnectionsState.set_form_value": Call(
        lambda w: ("name", "Mercy"), _set(form_vendor="generic")
    ),
    "ConnectionsState.set_form_open": Call(lambda w: (False,)),
    "ConnectionsState.set_key_alg": Call(lambda w: ("ES384",)),
    "ConnectionsState.set_schedule_expr": Call(lambda w: ("0 * * * *",)),
    "ConnectionsState.set_concurrency": Call(lambda w: ("3",)),
    "ConnectionsState.set_sweep_expr": Call(lambda w: ("15 3 * * *",)),
    "ConnectionsState.set_full_sync_via": Call(lambda w: ("search",)),
    "ConnectionsState.set_page_size": Call(lambda w: ("500",)),
    "ConnectionsState.set_streams": Call(lambda w: ("2",)),
    "ConnectionsState.set_resource_types": Call(lambda w: ("Patient, Observation",)),
    "RecordState.set_open": Call(lambda w: (False,)),
    "RulesState.set_editor_value": Call(lambda w: ("description", "d")),
    "RulesState.set_editor_open": Call(lambda w: (False,)),
    "RulesState.set_sample": Call(lambda w: ("{}",)),
    "RulesState.set_dry_direction": Call(lambda w: ("outbound",)),
    "ConflictModalState.set_open": Call(lambda w: (False,)),
    "ConflictModalState.set_strategy": Call(lambda w: ("merge",)),
    "ConflictModalState.set_choice": Call(lambda w: ("code", "remote")),
    "ConflictModalState.set_manual": Call(lambda w: ("{}",)),
    "ConflictModalState.set_reason": Call(lambda w: ("checked",)),
    "WebhookFormState.set_open": Call(lambda w: (False,)),
    "WebhookFormState.set_field": Call(lambda w: ("name", "x")),
    "WebhookFormState.set_include_content": Call(lambda w: (True,)),
    "WebhookFormState.toggle_event": Call(lambda w: ("patient.updated", True)),
    "WebhookFormState.toggle_group": Call(lambda w: (["patient.updated"], True)),
    "StartSyncState.open_change": Call(lambda w: (True,)),
    "StartSyncState.set_field": Call(lambda w: ("patient_id", "p1")),
    "JobDetailState.open_change": Call(lambda w: (False,)),
    "WebhooksState.cancel_delete": Call(),
    "ValidationRulesState.close_form": Call(),
    "HL7FeedState.set_new_application": Call(lambda w: ("LABADT",)),
    "HL7FeedState.set_new_facility": Call(lambda w: ("NORTH",)),
    "ValidationRulesState.set_form_value": Call(lambda w: ("kind", "pattern")),
    "ValidationRulesState.set_sample": Call(lambda w: ("{}",)),
}


# -- the database: one migrated template with the world in it, copied for each test --------


def _configure(mp: pytest.MonkeyPatch, db_path: Path, key: str) -> None:
    mp.setenv("HOLOVITALS_DATABASE_URL", f"sqlite:///{db_path}")
    mp.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    mp.setenv("HOLOVITALS_SECRET_KEY", key)
    get_settings.cache_clear()
    get_engine.cache_clear()
    redis_connection.cache_clear()


def _build_world() -> World:
    world = World()
    with session_scope() as session:
        connection = make_connection(session, base_url="http://127.0.0.1:9/fhir")
        world.cid = connection.id
        world.jid = make_job(session, world.cid).id
        world.fjid = make_job(session, world.cid, JobStatus.FAILED).id
        world.sid = make_subscription(session, url="http://10.0.0.1/hook").id
        delivery = make_delivery(session, world.sid)
        delivery.status = DeliveryStatus.FAILED
        session.add(delivery)
        session.flush()
        world.did = delivery.id
        world.xid = make_conflict(session, world.cid)
        record = session.get(SyncedRecord, make_record(session, world.cid, world.rec))
        world.etag = local_etag(record)
        alert = Alert(kind=AlertKind.QUEUE_DEPTH, subject="queue:sync", message="deep queue")
        session.add(alert)
        session.flush()
        world.aid = alert.id
        world.rid = (
            DataTransformationService(session)
            .create(RuleIn(kind="redact", params={"path": "text"}, connection_id=world.cid))
            .id
        )
        feed = HL7Feed(connection_id=world.cid, sending_application="EPICADT")
        session.add(feed)
        session.flush()
        world.fid = feed.id
        for role in Role:
            make_user(session, role.value, role)
    for role in Role:
        with session_scope() as session:
            world.tokens[role], _user = auth.sign_in(
                session, username=role.value, password=PASSWORD, ip=None
            )
    # Through the panel's own helpers, as the admin's form would add it.
    assert validation_ui._add(world.cid, VALIDATION_FORM, SYSTEM) == {}
    (rule,) = validation_ui._rules(world.cid)
    world.vid = rule["id"]
    return world


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, World]]:
    path = tmp_path_factory.mktemp("handlers") / "template.db"
    key = Fernet.generate_key().decode()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOLOVITALS_DATA_DIR", str(path.parent))
        _configure(mp, path, key)
        migrations.upgrade(f"sqlite:///{path}")
        world = _build_world()
        get_engine().dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield path, key, world


@pytest.fixture
def world(
    template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_client
) -> Iterator[World]:
    path, key, built = template
    copy = tmp_path / "handlers.db"
    shutil.copyfile(path, copy)
    _configure(monkeypatch, copy, key)
    yield built
    get_engine().dispose()
    redis_connection.cache_clear()


@functools.cache
def _schema() -> sa.MetaData:
    """The tables as migrated (every copy of the template has the same ones)."""
    metadata = sa.MetaData()
    metadata.reflect(bind=get_engine())
    return metadata


def _snapshot(redis_client: Any) -> dict[str, Any]:
    """Every row of every table (volatile columns left out), and the Redis keys."""
    tables: dict[str, Any] = {}
    with get_engine().connect() as conn:
        for name, table in _schema().tables.items():
            columns = [c for c in table.columns if (name, c.name) not in VOLATILE]
            rows = conn.execute(sa.select(*columns)).all()
            tables[name] = sorted(tuple(map(repr, row)) for row in rows)
    return {"tables": tables, "redis": sorted(redis_client.keys("*"))}


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    names = [n for n in before["tables"] if before["tables"][n] != after["tables"].get(n)]
    return names + (["redis"] if before["redis"] != after["redis"] else [])


# -- running a handler -----------------------------------------------------------------------


def _tab(world: World, caller: Role | None, key: str) -> BaseState:
    """A fresh state tree as one browser tab of `caller` has it; the handler's own substate."""
    root = State(_reflex_internal_init=True)
    cookie = "theme=dark" + (f"; hv_session={world.tokens[caller]}" if caller else "")
    handshake = {
        RouteVar.HEADERS: {"host": "localhost:8000", "cookie": cookie},
        RouteVar.CLIENT_IP: "127.0.0.1",
    }
    root.router_data = root._update_router_vars(handshake, {})
    state = root.get_substate(HANDLERS[key].state.get_full_name().split("."))
    return state


async def _collect(result: Any) -> list[Any]:
    if inspect.isawaitable(result):
        result = await result
    items: list[Any] = []
    if inspect.isasyncgen(result):
        items = [item async for item in result]
    elif inspect.isgenerator(result):
        items = list(result)
    else:
        items = [result]
    flat = [e for item in items for e in (item if isinstance(item, list) else [item])]
    return [e for e in flat if e is not None]


async def _run_background(state: BaseState, fn: Callable[..., Any], args: tuple) -> list[Any]:
    """Until it returns (refused) or has subscribed (`live`); then the tab 'closes'."""
    task = asyncio.ensure_future(fn(Unlocked(state), *args))
    for _ in range(200):
        if task.done() or getattr(state, "live", False):
            break
        await asyncio.sleep(0.05)
    if task.done():
        events = await _collect(task.result())
        assert events, "the watcher ended without refusing or subscribing"
        return events
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert getattr(state, "live", False), "the watcher neither refused nor subscribed"
    return []


def _run(
    world: World,
    caller: Role | None,
    key: str,
    args: tuple = (),
    prepare: Callable[[Any, World], None] | None = None,
) -> list[Any]:
    state = _tab(world, caller, key)
    if prepare is not None:
        prepare(state, world)
    handler = HANDLERS[key]
    if handler.is_background:
        return asyncio.run(_run_background(state, handler.fn, args))
    return asyncio.run(_collect(handler.fn(state, *args)))


def _shown(event: Any) -> str:
    """An event as the page would act on it: "redirect:<path>", "toast:<js>" or its name."""
    if isinstance(event, EventSpec):
        name = event.handler.fn.__qualname__
        value = event.args[0][1] if event.args else None
        if name == "_redirect":
            return f"redirect:{getattr(value, '_var_value', '')}"
        if name == "_call_function":
            return f"script:{getattr(value, '_js_expr', '')}"
        return name
    if isinstance(event, EventHandler):
        return event.fn.__qualname__
    return repr(event)


def _refusal(events: list[Any], needed: Role) -> str | None:
    """The sign-in redirect or the role toast among what the handler sent back, if any."""
    for shown in map(_shown, events):
        if shown.startswith("redirect:/signin"):
            return "sign-in"
        if "__toast" in shown and f"this needs the {needed.value} role" in shown.lower():
            return "role"
    return None


# -- the tests -----------------------------------------------------------------------------


def test_every_handler_is_declared() -> None:
    """Declared in code, or listed here: a new handler fails until someone decides which."""
    listed = set(UI_ONLY)
    undeclared = sorted(k for k, h in HANDLERS.items() if permission_of(h.fn) is None
                        and k not in listed and not k.endswith(".setvar"))  # fmt: skip
    assert not undeclared, f"declare @requires/@reads (or list as UI-only): {undeclared}"
    stale = sorted(k for k in listed | set(CALLS) if k not in HANDLERS)
    assert not stale, f"listed here but no such handler: {stale}"
    both = sorted(k for k in DECLARED if k in listed)
    assert not both, f"declared in code and listed as UI-only: {both}"
    missing = sorted(k for k in DECLARED if k not in CALLS)
    assert not missing, f"say how the page calls these (CALLS): {missing}"


def test_declared_handlers_can_check_the_role() -> None:
    """A role check awaits the session: a declared handler that is not async cannot have one.

    (This also keeps `setvar`, which reaches only plain `set_*` functions, away from them.)
    """
    sync = sorted(
        k
        for k in DECLARED
        if not (
            inspect.iscoroutinefunction(HANDLERS[k].fn)
            or inspect.isasyncgenfunction(HANDLERS[k].fn)
        )
    )
    assert not sync, sync


@pytest.mark.parametrize("key", DECLARED)
def test_handler_as_each_caller(key: str, world: World, redis_client) -> None:
    permission = permission_of(HANDLERS[key].fn)
    assert permission is not None
    call = CALLS[key]
    args = call.args(world)
    first_allowed = True
    for caller in CALLERS:
        before = _snapshot(redis_client)
        events = _run(world, caller, key, args, call.prepare)
        changed = _changed(before, _snapshot(redis_client))
        refusal = _refusal(events, permission.role)
        shown = [_shown(e) for e in events]
        if caller is None or RANK[caller] < RANK[permission.role]:
            assert refusal == ("sign-in" if caller is None else "role"), (key, caller, shown)
            assert not changed, (key, caller, "refused, yet changed", changed)
            continue
        assert refusal is None, (key, caller, shown)
        if not permission.changes:
            assert not changed, (key, caller, "declared read-only, yet changed", changed)
        elif first_allowed and call.changes:
            assert changed, (key, caller, "allowed, yet nothing changed", shown)
        first_allowed = False


def test_ui_only_handlers_touch_no_stored_data(world: World, redis_client) -> None:
    """Run as nobody: a handler that wrote without a role check would show here."""
    for key, call in UI_ONLY.items():
        before = _snapshot(redis_client)
        events = _run(world, None, key, call.args(world), call.prepare)
        assert not _changed(before, _snapshot(redis_client)), (key, [_shown(e) for e in events])
