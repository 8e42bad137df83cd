"""State of the Records page: a connection's records and record errors, and one record open.

Both lists are paged on the server by keyset (records in id order, errors newest first) and
filtered as `GET /api/records` and `GET /api/records/errors` filter. The page can be opened
on a filter from elsewhere: `/records?connection=1&view=errors&job=42` is where the job
detail dialog sends an engineer to see what a job flagged. Reading needs a viewer; asking
for a local delete needs an operator, as the API's `DELETE /api/records/...` does.
"""

from __future__ import annotations

import asyncio

import reflex as rx

from ...db import session_scope
from ...models import Role
from ...services import labels
from ...services import records as service
from ...services.auth import Principal
from ..views import records as views
from ..views.paging import turn
from .session import acting, reads, requires

PAGE_SIZE = 15
ANY = views.ANY
VIEWS = ("records", "errors")
SELECTS = {"resource_type", "invalid", "dirty", "deleted", "error_type", "severity", "layer"}
TEXTS = {"records": ("patient", "changed_since"), "errors": ("job", "remote_id", "rule")}
# What a link may set (`?connection=1&view=errors&job=42&type=Observation`).
QUERY_KEYS = {"view", "connection", "job", "patient", "type", "remote_id", "invalid"}
Event = rx.event.EventSpec | list[rx.event.EventSpec] | None


def _default_filters() -> dict[str, str]:
    return {"patient": "", "resource_type": ANY, "invalid": ANY, "dirty": ANY, "deleted": ANY,
            "changed_since": "", "job": "", "error_type": ANY, "remote_id": "",
            "severity": ANY, "layer": ANY, "rule": ""}  # fmt: skip


def _choices() -> list[dict[str, str]]:
    with session_scope() as session:
        return views.connection_choices(session)


def _types(connection_id: int) -> list[str]:
    with session_scope() as session:
        return views.resource_types(session, connection_id)


def _records(
    connection_id: int, filters: dict[str, str], after: int
) -> tuple[views.Page | None, dict[str, str]]:
    flt, errors = views.record_filter(connection_id, filters)
    if flt is None:
        return None, errors
    with session_scope() as session:
        return views.records_page(session, flt, cursor=after or None, limit=PAGE_SIZE), {}


def _errors(
    connection_id: int, filters: dict[str, str], after: int
) -> tuple[views.Page | None, dict[str, str], str]:
    flt, errors = views.error_filter(connection_id, filters)
    if flt is None:
        return None, errors, ""
    with session_scope() as session:
        page = views.errors_page(session, flt, cursor=after or None, limit=PAGE_SIZE)
    return page, {}, views.csv_path(flt)


def _view(connection_id: int, resource_type: str, remote_id: str) -> views.RecordView | None:
    with session_scope() as session:
        return views.record_view(session, connection_id, resource_type, remote_id)


def _delete(
    principal: Principal, connection_id: int, resource_type: str, remote_id: str, etag: str
) -> str | None:
    """Ask for the record's delete at the EHR (as the API's DELETE does, If-Match on the
    version the operator saw); None when done, else why not (no values)."""
    try:
        with session_scope() as session:
            row = service.find(session, connection_id, resource_type, remote_id)
            service.delete_local(session, row, if_match=etag, actor=principal.actor)
    except service.RecordNotFound:
        return "that record no longer exists"
    except service.StaleLocalWrite:
        return "the record changed since it was opened; look at it again before deleting"
    except (service.RecordHeld, service.DeleteNotSupported) as exc:
        return str(exc)
    return None


class RecordsState(rx.State):
    """One connection, the list on screen (records or errors) and the filters that chose it."""

    connection: str = ""
    connections: list[dict[str, str]] = []
    view: str = "records"
    filters: dict[str, str] = _default_filters()
    filter_errors: dict[str, str] = {}
    # Text inputs keep what is typed until applied; a new key redraws them from `filters`
    # when a link or Clear changes them.
    form_key: int = 0
    resource_types: list[str] = [ANY]
    rows: list[dict[str, str]] = []
    after: int = 0
    next_cursor: int = 0
    back: list[int] = []
    errors: list[dict[str, str]] = []
    errors_after: int = 0
    errors_next: int = 0
    errors_back: list[int] = []
    csv_path: str = ""
    # The link's query last taken over: a later load with the same query keeps what the
    # person has chosen since.
    _applied_query: str = ""

    def _take_query(self) -> None:
        params = self.router.url.query_parameters
        query = "&".join(f"{k}={params[k]}" for k in sorted(params) if k in QUERY_KEYS)
        if not query or query == self._applied_query:
            return
        self._applied_query = query
        filters = _default_filters()
        filters.update(
            job=params.get("job", ""),
            patient=params.get("patient", ""),
            remote_id=params.get("remote_id", ""),
        )
        if params.get("type"):
            filters["resource_type" if params.get("view") != "errors" else "error_type"] = params[
                "type"
            ]
        if params.get("invalid") in views.INVALID:
            filters["invalid"] = params["invalid"]
        self.filters, self.filter_errors, self.form_key = filters, {}, self.form_key + 1
        self.view = params.get("view") if params.get("view") in VIEWS else "records"
        if str(params.get("connection", "")).isdecimal():
            self.connection = str(params["connection"])
        self._first_page()

    def _first_page(self) -> None:
        self.after, self.back, self.errors_after, self.errors_back = 0, [], 0, []

    async def _show(self) -> None:
        """Read the connection list, its types and the list on screen (the database's work
        runs in threads)."""
        self.connections = await asyncio.to_thread(_choices)
        ids = [c["id"] for c in self.connections]
        if self.connection not in ids:
            self.connection = ids[0] if ids else ""
            self._first_page()
        if not self.connection:
            self.rows, self.errors, self.resource_types, self.csv_path = [], [], [ANY], ""
            return
        cid = int(self.connection)
        self.resource_types = [ANY, *await asyncio.to_thread(_types, cid)]
        if self.view == "records":
            page, self.filter_errors = await asyncio.to_thread(
                _records, cid, dict(self.filters), self.after
            )
            if page is not None:
                self.rows, self.next_cursor = page.rows, page.next_cursor or 0
        else:
            page, self.filter_errors, path = await asyncio.to_thread(
                _errors, cid, dict(self.filters), self.errors_after
            )
            if page is not None:
                self.errors, self.errors_next = page.rows, page.next_cursor or 0
                self.csv_path = path

    def _forget(self) -> None:
        """Refused (signed out): the lists shown do not stay in the tab's state."""
        self.rows, self.errors = [], []

    @rx.event
    @reads(on_refusal=_forget)
    async def load(self) -> Event:
        self._take_query()
        await self._show()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def set_connection(self, value: str) -> Event:
        self.connection = value
        self.filters = {**self.filters, "resource_type": ANY, "error_type": ANY}
        self._first_page()
        await self._show()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def set_view(self, value: str) -> Event:
        if value in VIEWS:
            self.view = value
        await self._show()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def set_filter(self, key: str, value: str) -> Event:
        """A picker changed: the list follows at once, from its first page."""
        if key in SELECTS:
            self.filters = {**self.filters, key: value}
        self._first_page()
        await self._show()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def apply(self, form: dict[str, str]) -> Event:
        """The typed filters of the list on screen (Enter or the Filter button)."""
        typed = {k: str(form.get(k, "")).strip()[:200] for k in TEXTS.get(self.view, ())}
        self.filters = {**self.filters, **typed}
        self._first_page()
        await self._show()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def clear(self) -> Event:
        self.filters, self.filter_errors = _default_filters(), {}
        self.form_key += 1
        self._first_page()
        await self._show()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def page(self, forward: bool) -> Event:
        self.after, self.back = turn(self.after, self.back, self.next_cursor, forward)
        await self._show()
        return None

    @rx.event
    @reads(on_refusal=_forget)
    async def errors_page(self, forward: bool) -> Event:
        self.errors_after, self.errors_back = turn(
            self.errors_after, self.errors_back, self.errors_next, forward
        )
        await self._show()
        return None


class RecordState(rx.State):
    """The record open in the dialog: its state and HoloVitals' copy beside its issues."""

    open: bool = False
    summary: dict[str, str] = {}
    body: str = ""
    remote_body: str = ""
    issues: list[dict[str, str]] = []
    busy: bool = False
    error: str = ""
    # The version of HoloVitals' copy on screen: a delete names it, so a record changed
    # meanwhile is refused (412 in the API's words) instead of deleted unseen.
    _etag: str = ""

    async def _read(self, connection_id: int, resource_type: str, remote_id: str) -> bool:
        view = await asyncio.to_thread(_view, connection_id, resource_type, remote_id)
        if view is None:
            return False
        self.summary, self.body, self.remote_body = view.summary, view.body, view.remote_body
        self.issues, self._etag = view.issues, view.etag
        return True

    @rx.event
    @reads()
    async def open_record(self, connection: str, resource_type: str, remote_id: str) -> Event:
        if not str(connection).isdecimal() or not await self._read(
            int(connection), resource_type, remote_id
        ):
            return rx.toast.error("That record is not held for this connection.")
        self.error, self.open = "", True
        return None

    @rx.event
    def set_open(self, value: bool) -> None:
        self.open = value
        if not value:  # the state holds only what is on screen
            self.body, self.remote_body, self.issues, self._etag = "", "", [], ""

    @rx.event
    @requires(Role.OPERATOR)
    async def delete_local(self):  # noqa: ANN201 (yields UI updates)
        s = self.summary
        if not s.get("connection_id", "").isdecimal():
            return
        self.busy, self.error = True, ""
        yield
        key = (int(s["connection_id"]), s["type"], s["remote_id"])
        problem = await asyncio.to_thread(_delete, acting(), *key, self._etag)
        self.busy = False
        await self._read(*key)
        if problem:
            self.error = labels.sentence(problem)
            return
        yield RecordsState.load
        yield rx.toast.success(
            f"{s['type']} {s['remote_id']} is marked for deletion: the next "
            "outbound or bidirectional job deletes it at the EHR."
        )
