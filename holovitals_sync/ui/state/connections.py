"""Connections page state: the paged list, the add/edit dialog, test, keys and schedule.

Every handler that reads or changes data needs the role the REST API asks for the same
thing, enforced by its `@reads`/`@requires` (the session is resolved before it runs): viewer
to read, operator to test, admin to change. Database and network work runs in a thread so
the event loop stays free.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import reflex as rx

from ...db import session_scope
from ...models import ConnectionStatus, EHRConnection, Role, Vendor
from ...services import connections as service
from ...services import labels
from ...services.audit import Actor
from ...services.connections import ConnectionPatch
from ..views import connection_forms as forms
from ..views import connections as views
from .rules import RulesState
from .session import acting, reads, requires

PER_PAGE = 10
# Statuses an administrator sets by hand ("error" is the engine's verdict).
MANUAL_STATUSES = [
    ConnectionStatus.DRAFT.value,
    ConnectionStatus.ACTIVE.value,
    ConnectionStatus.PAUSED.value,
]
Event = rx.event.EventSpec | list[rx.event.EventSpec] | None


def _page(page: int, search: str) -> views.ConnectionPage:
    with session_scope() as db:
        return views.connection_page(db, page=page, per_page=PER_PAGE, search=search)


def _detail(connection_id: int) -> dict[str, Any] | None:
    with session_scope() as db:
        row = db.get(EHRConnection, connection_id)
        if row is None:
            return None
        jwks = service.public_jwks(row)
        return {"row": views.to_row(row), "jwks": jwks if jwks["keys"] else None,
                "schedule": row.sync_schedule or "", "concurrency": str(row.concurrency_limit),
                "sweep": row.sweep_schedule or "", "full_sync_via": row.full_sync_via,
                "page_size": str(row.page_size or ""), "streams": str(row.stream_limit),
                "page_size_learned": str(row.page_size_learned or ""),
                "resource_types": views.types_text(row.resource_types),
                "vendor": row.vendor.value, "values": forms.initial_values(row.vendor.value, row),
                "has_secret": row.credentials_encrypted is not None}  # fmt: skip


def _save(
    vendor: str, values: dict[str, str], connection_id: int, actor: Actor
) -> tuple[int | None, dict[str, str]]:
    """Create or update through the service; (id, {}) or (None, messages per field)."""
    with session_scope() as db:
        row = db.get(EHRConnection, connection_id) if connection_id else None
        if connection_id and row is None:
            return None, {"name": "this connection was deleted meanwhile"}
        parsed, errors = forms.parse_form(vendor, values, row=row)
        if parsed is None:
            return None, errors
        try:
            if row is None:
                row = service.create_connection(db, data=parsed, actor=actor)  # type: ignore[arg-type]
            else:
                service.update_connection(db, row=row, patch=parsed, actor=actor)  # type: ignore[arg-type]
        except service.DuplicateName as exc:
            return None, {"name": str(exc)}
        db.flush()
        return row.id, {}


def _test(connection_id: int, actor: Actor) -> list[dict[str, str]]:
    try:
        steps = service.test_connection(connection_id, actor=actor)
    except service.ConnectionMissing:
        return []
    except ValueError as exc:  # a setting the vendor needs is missing (names it, no value)
        return [{"name": "configuration", "ok": "", "detail": str(exc)[:300]}]
    return [{"name": s.name, "ok": "yes" if s.ok else "", "detail": s.detail} for s in steps]


def _generate(connection_id: int, alg: str, actor: Actor) -> dict[str, Any] | None:
    with session_scope() as db:
        row = db.get(EHRConnection, connection_id)
        if row is None:
            return None
        return service.generate_signing_key(db, row=row, alg=alg, actor=actor)


def _save_schedule(
    connection_id: int,
    expression: str,
    concurrency: str,
    actor: Actor,
    *,
    sweep: str | None = None,
    full_sync_via: str | None = None,
    page_size: str | None = None,
    streams: str | None = None,
    resource_types: str | None = None,
) -> dict[str, str]:
    """Save the schedule card: `sweep` is the id sweep's cron (blank: off), `full_sync_via`
    how full syncs read the EHR, `page_size` and `streams` how it pages (see
    `views.schedule_patch`), `resource_types` the types to sync; None leaves any of them as
    it is."""
    patch, errors = views.schedule_patch(expression, concurrency, sweep, full_sync_via,
                                         page_size=page_size, streams=streams,
                                         resource_types=resource_types)  # fmt: skip
    if patch is None:
        return errors
    with session_scope() as db:
        row = db.get(EHRConnection, connection_id)
        if row is None:
            return {"schedule": "this connection was deleted meanwhile"}
        try:
            service.update_connection(db, row=row, patch=patch, actor=actor)
        except service.UnservedTypes as exc:
            return {"resource_types": str(exc)}
    return {}


def _set_status(connection_id: int, status: str, actor: Actor) -> bool:
    with session_scope() as db:
        row = db.get(EHRConnection, connection_id)
        if row is None:
            return False
        service.update_connection(db, row=row, patch=ConnectionPatch(status=status), actor=actor)
        return True


def _address(url: str) -> rx.event.EventSpec:
    """Change the address bar without a navigation (no page load, no lost state)."""
    return rx.call_script(f"window.history.replaceState(null, '', {orjson.dumps(url).decode()})")


def jwks_url(connection_id: int) -> str:
    """The stable public URL EHRs fetch our keys from (served by the API, no sign-in)."""
    base = rx.config.get_config().api_url.rstrip("/")
    return f"{base}/api/connections/{connection_id}/jwks.json"


class ConnectionsState(rx.State):
    """What the Connections page shows; only the page on screen is held."""

    rows: list[dict[str, str]] = []
    page: int = 0
    pages: int = 1
    total: int = 0
    total_text: str = ""  # "1 connection", "12 connections"
    search: str = ""
    # The connection opened below the list (0: none).
    selected_id: int = 0
    selected: dict[str, str] = {}
    # Add/edit dialog.
    form_open: bool = False
    form_id: int = 0  # 0: adding
    form_vendor: str = ""
    # Backend-only (leading underscore): a typed secret is never echoed to the browser.
    _form_values: dict[str, str] = {}
    form_errors: dict[str, str] = {}
    form_fields: list[dict[str, str]] = []
    form_note: str = ""
    form_has_secret: bool = False
    form_busy: bool = False
    vendors: list[dict[str, str]] = forms.vendor_options()
    statuses: list[str] = MANUAL_STATUSES
    # Test connection.
    test_steps: list[dict[str, str]] = []
    test_running: bool = False
    # Keys.
    key_alg: str = "RS384"
    jwks_json: str = ""
    jwks_link: str = ""
    # Schedule.
    schedule_expr: str = ""
    concurrency: str = "2"
    schedule_errors: dict[str, str] = {}
    next_runs: list[str] = []
    # The id sweep that finds records the EHR deleted without saying so ("": off).
    sweep_expr: str = ""
    next_sweep: str = ""
    # How a full sync reads the EHR: "export" (Bulk Data where offered) or "search".
    full_sync_via: str = "export"
    # The `_count` asked for ("": the vendor's), what the server turned out to honour ("":
    # nothing learned), and how many types one sync pages at once.
    page_size: str = ""
    page_size_learned: str = ""
    streams: str = "4"
    # Said when more types would page at once than the jobs at once allow ("": they fit).
    streams_capped: str = ""
    # The types to sync, as typed ("": every type the vendor or server offers).
    resource_types: str = ""

    # -- the list ----------------------------------------------------------------------

    async def _refresh(self) -> None:
        found = await asyncio.to_thread(_page, self.page, self.search)
        self.rows, self.total, self.page, self.pages = (found.rows, found.total, found.page,
                                                        found.pages)  # fmt: skip
        self.total_text = labels.plural(found.total, "connection")

    def _forget(self) -> None:
        """Refused (signed out): the list and the open connection do not stay in the state."""
        self.rows, self.selected_id, self.selected = [], 0, {}

    async def _load(self) -> Event:
        await self._refresh()
        # `?id=N` (kept in the address bar by `select`) reopens the same connection after a
        # reload or a backend restart, and makes a connection linkable.
        wanted = self.router.url.query_parameters.get("id", "")
        if wanted.isdecimal() or self.selected_id:
            return await self._open(int(wanted) if wanted.isdecimal() else self.selected_id)
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def load(self) -> Event:
        return await self._load()

    @rx.event
    @reads(on_refusal=_forget)
    async def set_search(self, value: str) -> Event:
        self.search, self.page = value[:200], 0
        return await self._load()

    @rx.event
    @reads(on_refusal=_forget)
    async def turn_page(self, step: int) -> Event:
        self.page = max(0, self.page + step)
        return await self._load()

    # -- one connection ----------------------------------------------------------------

    async def _open(self, connection_id: int) -> Event:
        detail = await asyncio.to_thread(_detail, connection_id)
        if detail is None:
            self.selected_id, self.selected = 0, {}
            return rx.toast.error("No such connection.")
        self.selected_id, self.selected = connection_id, detail["row"]
        self.jwks_json = (
            orjson.dumps(detail["jwks"], option=orjson.OPT_INDENT_2).decode()
            if detail["jwks"]
            else ""
        )
        self.jwks_link = jwks_url(connection_id)
        self.schedule_expr, self.concurrency = detail["schedule"], detail["concurrency"]
        self.sweep_expr, self.schedule_errors = detail["sweep"], {}
        self.full_sync_via = detail["full_sync_via"]
        self.page_size, self.streams = detail["page_size"], detail["streams"]
        self.page_size_learned = detail["page_size_learned"]
        self.resource_types = detail["resource_types"]
        self.streams_capped = views.streams_capped(self.streams, self.concurrency)
        self._preview()
        self._preview_sweep()
        return RulesState.load_for(connection_id)

    @rx.event
    @reads()
    async def select(self, connection_id: str) -> Event:
        self.test_steps = []
        opened = await self._open(int(connection_id))
        if not self.selected_id:
            return opened
        return [opened, _address(f"?id={self.selected_id}")]  # type: ignore[list-item]

    @rx.event
    def close_detail(self) -> rx.event.EventSpec:
        self.selected_id, self.selected, self.test_steps = 0, {}, []
        return _address(self.router.url.path)

    # -- add / edit dialog -------------------------------------------------------------

    def _render_form(self) -> None:
        self.form_fields = forms.form_fields(self.form_vendor, self._form_values, self.form_errors,
                                             has_secret=self.form_has_secret)  # fmt: skip
        self.form_note = forms.auth_note(self.form_vendor, self._form_values)

    @rx.event
    @requires(Role.ADMIN)
    async def open_add(self) -> Event:
        self.form_id, self.form_has_secret, self.form_errors = 0, False, {}
        self.form_vendor = Vendor.GENERIC.value  # any FHIR R4 server; the picker changes it
        self._form_values = forms.initial_values(self.form_vendor)
        self._render_form()
        self.form_open = True
        return None

    @rx.event
    @requires(Role.ADMIN)
    async def open_edit(self, connection_id: str) -> Event:
        detail = await asyncio.to_thread(_detail, int(connection_id))
        if detail is None:
            return rx.toast.error("No such connection.")
        self.form_id, self.form_vendor = int(connection_id), detail["vendor"]
        self._form_values, self.form_errors = detail["values"], {}
        self.form_has_secret = detail["has_secret"]
        self._render_form()
        self.form_open = True
        return None

    @rx.event
    def set_form_vendor(self, vendor: str) -> None:
        """A new connection's vendor decides its fields; the name typed so far stays."""
        if self.form_id or vendor not in {v["value"] for v in self.vendors}:
            return
        name = self._form_values.get("name", "")
        self.form_vendor, self.form_errors = vendor, {}
        self._form_values = {**forms.initial_values(vendor), "name": name}
        self._render_form()

    @rx.event
    def set_form_value(self, name: str, value: str) -> None:
        self._form_values = {**self._form_values, name: value[:2000]}
        self.form_errors = {k: v for k, v in self.form_errors.items() if k != name}
        self._render_form()

    @rx.event
    def set_form_open(self, is_open: bool) -> None:
        self.form_open = is_open
        if not is_open:
            self._form_values = {}  # a typed secret does not linger in the state

    @rx.event
    @requires(Role.ADMIN)
    async def save_form(self):  # noqa: ANN201 - an async generator of events
        self.form_busy = True
        yield
        saved, errors = await asyncio.to_thread(
            _save, self.form_vendor, dict(self._form_values), self.form_id, acting().actor
        )
        self.form_busy = False
        if saved is None:
            self.form_errors = errors
            self._render_form()
            return
        verb = "updated" if self.form_id else "added"
        self.form_open, self._form_values, self.form_errors = False, {}, {}
        await self._refresh()
        yield rx.toast.success(f"Connection {verb}.")
        yield await self._open(saved)
        yield _address(f"?id={saved}")

    @rx.event
    @requires(Role.ADMIN)
    async def set_status(self, status: str) -> Event:
        """Activate or pause the open connection ("error" is the engine's to set)."""
        if not self.selected_id:
            return None
        if status not in MANUAL_STATUSES:
            return rx.toast.error(f"The status must be one of {', '.join(MANUAL_STATUSES)}.")
        if not await asyncio.to_thread(_set_status, self.selected_id, status, acting().actor):
            return rx.toast.error("No such connection.")
        await self._refresh()
        return await self._open(self.selected_id)

    # -- test, keys, schedule ----------------------------------------------------------

    @rx.event
    @requires(Role.OPERATOR)
    async def run_test(self):  # noqa: ANN201 - an async generator of events
        if not self.selected_id:
            return
        self.test_running, self.test_steps = True, []
        yield
        try:
            self.test_steps = await asyncio.to_thread(_test, self.selected_id, acting().actor)
        finally:
            self.test_running = False
        await self._refresh()
        detail = await asyncio.to_thread(_detail, self.selected_id)
        if detail is not None:
            self.selected = detail["row"]

    @rx.event
    def set_key_alg(self, alg: str) -> None:
        if alg in ("RS384", "ES384"):
            self.key_alg = alg

    @rx.event
    @requires(Role.ADMIN)
    async def generate_key(self) -> Event:
        if not self.selected_id:
            return None
        jwks = await asyncio.to_thread(_generate, self.selected_id, self.key_alg,
                                       acting().actor)  # fmt: skip
        if jwks is None:
            return rx.toast.error("No such connection.")
        self.jwks_json = orjson.dumps(jwks, option=orjson.OPT_INDENT_2).decode()
        self.jwks_link = jwks_url(self.selected_id)
        return rx.toast.success("Key pair generated: register the JWKS with the EHR.")

    def _field_error(self, name: str, error: str | None) -> None:
        """Set one schedule field's error, or drop it (None: the field was edited or is fine)."""
        errors = {k: v for k, v in self.schedule_errors.items() if k != name}
        self.schedule_errors = {**errors, name: error} if error else errors

    def _preview(self) -> None:
        preview = views.schedule_preview(self.schedule_expr)
        self.next_runs = [views.when(at) for at in preview.next_runs]
        self._field_error("schedule", preview.error)

    @rx.event
    def set_schedule_expr(self, value: str) -> None:
        self.schedule_expr = value[:100]
        self._preview()

    def _preview_sweep(self) -> None:
        preview = views.schedule_preview(self.sweep_expr, count=1)
        self.next_sweep = views.when(preview.next_runs[0]) if preview.next_runs else ""
        self._field_error("sweep", preview.error)

    @rx.event
    def set_sweep_expr(self, value: str) -> None:
        self.sweep_expr = value[:100]
        self._preview_sweep()

    @rx.event
    def set_concurrency(self, value: str) -> None:
        self.concurrency = value[:3]
        self._field_error("concurrency", None)
        self.streams_capped = views.streams_capped(self.streams, self.concurrency)

    @rx.event
    def set_page_size(self, value: str) -> None:
        self.page_size = value[:6]
        self._field_error("page_size", None)

    @rx.event
    def set_streams(self, value: str) -> None:
        self.streams = value[:3]
        self._field_error("streams", None)
        self.streams_capped = views.streams_capped(self.streams, self.concurrency)

    @rx.event
    def set_resource_types(self, value: str) -> None:
        self.resource_types = value[:4000]  # every R4 type, comma-separated, is ~2,500
        self._field_error("resource_types", None)

    @rx.event
    def set_full_sync_via(self, value: str) -> None:
        if value in views.FULL_SYNC_VIA:
            self.full_sync_via = value

    @rx.event
    @requires(Role.ADMIN)
    async def save_schedule(self) -> Event:
        if not self.selected_id:
            return None
        errors = await asyncio.to_thread(_save_schedule, self.selected_id, self.schedule_expr,
                                         self.concurrency, acting().actor,
                                         sweep=self.sweep_expr,
                                         full_sync_via=self.full_sync_via,
                                         page_size=self.page_size,
                                         streams=self.streams,
                                         resource_types=self.resource_types)  # fmt: skip
        self.schedule_errors = errors
        if errors:
            return None
        await self._refresh()
        return [rx.toast.success("Schedule saved."), await self._open(self.selected_id)]
