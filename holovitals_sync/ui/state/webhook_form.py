"""State of the webhook configuration modal: create and edit, secret once, test event.

The form is validated by the service's own pydantic models (`SubscriptionIn` to create,
`SubscriptionPatch` to edit), so the messages at each field are the ones the API gives. A
new or rotated secret is held only until the modal closes; nothing can show it again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx
from pydantic import ValidationError
from sqlmodel import Session

from ...db import session_scope
from ...models import EHRConnection, Role, SignatureAlgorithm, WebhookSubscription
from ...services import labels
from ...services.auth import Principal
from ...services.webhooks import EVENT_TYPES, subscriptions
from ...services.webhooks.probe import send_test_event
from ...services.webhooks.ssrf import TargetRefused
from ..views import webhooks as wh
from .session import acting, requires
from .webhooks import WebhooksState

ANY = "any"
FIELDS = (
    "name",
    "url",
    "event_types",
    "filter_connection_id",
    "filter_resource_types",
    "timeout_seconds",
    "max_retries",
    "algorithm",
    "include_content",
    "form",
)


def blank_errors() -> dict[str, str]:
    return dict.fromkeys(FIELDS, "")


def form_data(form: dict[str, Any]) -> dict[str, Any]:
    """The modal's strings as the service's fields (pydantic reports what does not fit)."""
    connection = form["connection"]
    # Absent (an older caller): the subscription's setting stays as it is.
    content = (
        {"include_content": bool(form["include_content"])} if "include_content" in form else {}
    )
    return {
        "name": form["name"].strip(),
        "url": form["url"].strip(),
        "algorithm": form["algorithm"],
        "event_types": [t for t in EVENT_TYPES if form["events"].get(t)],
        "filter_connection_id": int(connection) if connection.isdecimal() else None,
        "filter_resource_types": [
            t.strip() for t in form["resource_types"].split(",") if t.strip()
        ],
        "timeout_seconds": form["timeout"].strip(),
        "max_retries": form["retries"].strip(),
        **content,
    }


def _check_connection(session: Session, connection_id: int | None) -> None:
    if connection_id is not None and session.get(EHRConnection, connection_id) is None:
        raise ValueError("No such connection")


def save(
    principal: Principal, sub_id: int | None, form: dict[str, Any]
) -> tuple[int | None, str, dict[str, str]]:
    """Create or change a subscription: (id, new secret or "", field errors)."""
    data = form_data(form)
    try:
        model = (
            subscriptions.SubscriptionIn if sub_id is None else subscriptions.SubscriptionPatch
        ).model_validate(data)
    except ValidationError as exc:
        return sub_id, "", wh.field_errors(exc)
    with session_scope() as session:
        try:
            _check_connection(session, model.filter_connection_id)
        except ValueError as exc:
            return sub_id, "", {"filter_connection_id": str(exc)}
        try:
            if sub_id is None:
                row, secret = subscriptions.create(session, data=model, actor=principal.actor)
                return row.id, secret, {}
            row = session.get(WebhookSubscription, sub_id)
            if row is None:
                return sub_id, "", {"form": "That subscription no longer exists."}
            subscriptions.update(session, row=row, patch=model, actor=principal.actor)
        except TargetRefused as exc:
            session.rollback()
            return sub_id, "", {"url": labels.sentence(f"refused: {exc}", end="")}
    return sub_id, "", {}


def load_form(sub_id: int) -> dict[str, Any] | None:
    with session_scope() as session:
        row = session.get(WebhookSubscription, sub_id)
        if row is None:
            return None
        return {
            "name": row.name,
            "url": row.url,
            "algorithm": row.algorithm.value,
            "events": {t: t in row.event_types for t in EVENT_TYPES},
            "connection": str(row.filter_connection_id or ANY),
            "resource_types": ", ".join(row.filter_resource_types),
            "timeout": f"{row.timeout_seconds:g}",
            "retries": str(row.max_retries),
            "active": row.active,
            "include_content": row.include_content,
        }


def rotate(principal: Principal, sub_id: int) -> str:
    with session_scope() as session:
        row = session.get(WebhookSubscription, sub_id)
        if row is None:
            return ""
        return subscriptions.rotate_secret(session, row=row, actor=principal.actor)


def probe(principal: Principal, sub_id: int) -> dict[str, str] | None:
    with session_scope() as session:
        row = session.get(WebhookSubscription, sub_id)
        if row is None:
            return None
        result = send_test_event(session, sub=row, actor=principal.actor)
    return {
        "status": str(result.status) if result.status is not None else "no answer",
        "ms": str(result.ms),
        "error": result.error or "",
        "body": result.body_excerpt,
        "ok": "yes" if result.ok else "no",
    }


def connections() -> list[dict[str, str]]:
    with session_scope() as session:
        return wh.connection_choices(session)


class WebhookFormState(rx.State):
    """The configuration modal (operators only: every data handler's `@requires` says so)."""

    open: bool = False
    sub_id: int = 0  # 0: creating a new subscription
    name: str = ""
    url: str = "https://"
    algorithm: str = SignatureAlgorithm.HMAC_SHA256.value
    events: dict[str, bool] = {}
    connection: str = ANY
    resource_types: str = ""
    timeout: str = "10"
    retries: str = "5"
    active: bool = True
    include_content: bool = False  # send the stored resource (PHI) with each delivery
    errors: dict[str, str] = blank_errors()
    secret: str = ""  # a new or rotated secret, shown once, dropped when the modal closes
    test: dict[str, str] = {}
    connection_choices: list[dict[str, str]] = []
    busy: bool = False

    def _reset_form(self) -> None:
        self.sub_id, self.name, self.url = 0, "", "https://"
        self.algorithm = SignatureAlgorithm.HMAC_SHA256.value
        self.events = dict.fromkeys(EVENT_TYPES, False)
        self.connection, self.resource_types, self.timeout, self.retries = ANY, "", "10", "5"
        self.active, self.errors, self.secret, self.test = True, blank_errors(), "", {}
        self.include_content = False

    def _form(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "algorithm": self.algorithm,
            "events": self.events,
            "connection": self.connection,
            "resource_types": self.resource_types,
            "timeout": self.timeout,
            "retries": self.retries,
            "include_content": self.include_content,
        }

    @rx.event
    @requires(Role.OPERATOR)
    async def open_create(self) -> rx.event.EventSpec | None:
        self._reset_form()
        self.connection_choices = await asyncio.to_thread(connections)
        self.open = True
        return None

    @rx.event
    @requires(Role.OPERATOR)
    async def open_edit(self, sub_id: str) -> rx.event.EventSpec | None:
        form = await asyncio.to_thread(load_form, int(sub_id))
        if form is None:
            return rx.toast.error("That subscription no longer exists.")
        self._reset_form()
        self.sub_id = int(sub_id)
        for key, value in form.items():
            setattr(self, key, value)
        self.connection_choices = await asyncio.to_thread(connections)
        self.open = True
        return None

    @rx.event
    def set_open(self, value: bool) -> None:
        """Closing the modal (button, Escape, outside click) forgets any secret shown."""
        self.open = value
        if not value:
            self.secret, self.test = "", {}

    @rx.event
    def set_field(self, field: str, value: str) -> None:
        if field in (
            "name",
            "url",
            "algorithm",
            "connection",
            "resource_types",
            "timeout",
            "retries",
        ):
            setattr(self, field, value)
            self.errors = {**self.errors, _error_key(field): ""}

    @rx.event
    def set_include_content(self, checked: bool) -> None:
        self.include_content = bool(checked)

    @rx.event
    def toggle_event(self, event_type: str, checked: bool) -> None:
        if event_type in EVENT_TYPES:
            self.events = {**self.events, event_type: bool(checked)}
            self.errors = {**self.errors, "event_types": ""}

    @rx.event
    def toggle_group(self, types: list[str], checked: bool) -> None:
        self.events = {**self.events, **{t: bool(checked) for t in types if t in EVENT_TYPES}}
        self.errors = {**self.errors, "event_types": ""}

    @rx.event
    @requires(Role.OPERATOR)
    async def submit(self):  # noqa: ANN201 (yields UI updates)
        self.busy = True
        yield
        creating = self.sub_id == 0
        sub_id, secret, errors = await asyncio.to_thread(
            save, acting(), self.sub_id or None, self._form()
        )
        self.busy, self.errors = False, {**blank_errors(), **errors}
        if errors:
            return
        self.sub_id, self.secret = sub_id or 0, secret
        yield WebhooksState.load
        yield rx.toast.success("Subscription created." if creating else "Subscription saved.")

    @rx.event
    @requires(Role.OPERATOR)
    async def rotate_secret(self):  # noqa: ANN201 (yields UI updates)
        if not self.sub_id:
            return
        self.secret = await asyncio.to_thread(rotate, acting(), self.sub_id)
        yield rx.toast.success(
            "New secret generated; the old one still signs during the grace period."
        )

    @rx.event
    @requires(Role.OPERATOR)
    async def send_test(self):  # noqa: ANN201 (yields UI updates)
        if not self.sub_id:
            return
        self.busy, self.test = True, {}
        yield
        result = await asyncio.to_thread(probe, acting(), self.sub_id)
        self.busy = False
        if result is None:
            yield rx.toast.error("That subscription no longer exists.")
            return
        self.test = result
        yield WebhooksState.load


def _error_key(field: str) -> str:
    return {
        "connection": "filter_connection_id",
        "resource_types": "filter_resource_types",
        "timeout": "timeout_seconds",
        "retries": "max_retries",
    }.get(field, field)
