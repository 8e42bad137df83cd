"""The webhook configuration modal: fields with their messages, the secret once, test event."""

from __future__ import annotations

import reflex as rx

from ...models import SignatureAlgorithm
from ...services.webhooks import EVENT_GROUPS
from ..state.webhook_form import ANY, WebhookFormState
from .layout import dialog_content


def field_error(key: str) -> rx.Component:
    """The service's message for one field, right under it."""
    return rx.cond(
        WebhookFormState.errors[key] != "",
        rx.text(
            WebhookFormState.errors[key], color_scheme="red", size="1", id=f"webhook-error-{key}"
        ),
    )


def labelled(label: str, control: rx.Component, key: str, hint: str = "") -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        control,
        rx.cond(hint != "", rx.text(hint, size="1", color_scheme="gray")),
        field_error(key),
        spacing="1",
        width="100%",
    )


def text_field(label: str, field: str, key: str, **props: str) -> rx.Component:
    return labelled(
        label,
        rx.input(
            value=getattr(WebhookFormState, field),
            on_change=lambda v: WebhookFormState.set_field(field, v),
            id=f"webhook-{field}",
            width="100%",
            **props,
        ),
        key,
    )


def _event_group(group: str, types: tuple[str, ...]) -> rx.Component:
    """One group (as the service groups them) with a checkbox that sets the whole group."""
    all_on = rx.Var.create(True)
    for t in types:
        all_on = all_on & WebhookFormState.events[t].to(bool)
    return rx.vstack(
        rx.checkbox(
            rx.text(group.capitalize(), weight="bold", size="2"),
            checked=all_on,
            on_change=lambda checked: WebhookFormState.toggle_group(list(types), checked),
            id=f"webhook-group-{group}",
        ),
        *[
            rx.box(
                rx.checkbox(
                    rx.text(t, size="2"),
                    checked=WebhookFormState.events[t].to(bool),
                    on_change=lambda checked, t=t: WebhookFormState.toggle_event(t, checked),
                    id=f"webhook-event-{t.replace('.', '-')}",
                ),
                padding_left="1.25em",
            )
            for t in types
        ],
        spacing="1",
        align="start",
        min_width="12em",
    )


def event_checkboxes() -> rx.Component:
    """The event types, grouped as the service groups them."""
    return labelled(
        "Event types",
        rx.flex(
            *[_event_group(g, types) for g, types in EVENT_GROUPS.items()],
            wrap="wrap",
            spacing="4",
            id="webhook-events",
        ),
        "event_types",
    )


def _connection_select() -> rx.Component:
    return labelled(
        "Only events of connection",
        rx.select.root(
            rx.select.trigger(id="webhook-connection", width="100%"),
            rx.select.content(
                rx.select.item("any connection", value=ANY),
                rx.foreach(
                    WebhookFormState.connection_choices,
                    lambda c: rx.select.item(c["name"], value=c["id"]),
                ),
            ),
            value=WebhookFormState.connection,
            on_change=lambda v: WebhookFormState.set_field("connection", v),
        ),
        "filter_connection_id",
    )


def _delivery_fields() -> rx.Component:
    return rx.hstack(
        text_field("Timeout (seconds)", "timeout", "timeout_seconds"),
        text_field("Retries", "retries", "max_retries"),
        labelled(
            "Signature",
            rx.select(
                [a.value for a in SignatureAlgorithm],
                value=WebhookFormState.algorithm,
                on_change=lambda v: WebhookFormState.set_field("algorithm", v),
                id="webhook-algorithm",
                width="100%",
            ),
            "algorithm",
        ),
        spacing="3",
        width="100%",
    )


def content_checkbox() -> rx.Component:
    """Opt in to clinical content, with what that means said next to it."""
    return rx.vstack(
        rx.checkbox(
            rx.text("Include clinical content (the resource itself)", size="2"),
            checked=WebhookFormState.include_content,
            on_change=WebhookFormState.set_include_content,
            id="webhook-include-content",
        ),
        rx.cond(
            WebhookFormState.include_content,
            rx.callout(
                "Deliveries will carry the stored FHIR resource: protected health "
                "information leaves HoloVitals and is sent to this subscriber. Enable it only "
                "for a receiver allowed to hold PHI, over HTTPS.",
                icon="triangle-alert",
                color_scheme="amber",
                size="1",
                width="100%",
                id="webhook-content-warning",
            ),
            rx.text(
                "Off: deliveries carry ids and references only.", size="1", color_scheme="gray"
            ),
        ),
        field_error("include_content"),
        spacing="1",
        width="100%",
    )


def secret_callout() -> rx.Component:
    return rx.cond(
        WebhookFormState.secret != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("key-round")),
            rx.vstack(
                rx.text("Signing secret — copy it now, it is not shown again:", size="2"),
                rx.code(WebhookFormState.secret, id="webhook-secret", size="3"),
                spacing="1",
            ),
            color_scheme="amber",
            width="100%",
        ),
    )


def test_answer() -> rx.Component:
    t = WebhookFormState.test
    return rx.cond(
        t.length() > 0,  # type: ignore[attr-defined]
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.text("Receiver answered", weight="bold", size="2"),
                    rx.badge(
                        t["status"],
                        id="webhook-test-status",
                        color_scheme=rx.cond(t["ok"] == "yes", "green", "red"),
                    ),
                    rx.text(t["ms"], " ms", size="2", id="webhook-test-ms"),
                    rx.cond(t["error"] != "", rx.text(t["error"], color_scheme="red", size="2")),
                    align="center",
                ),
                rx.text(
                    t["body"],
                    id="webhook-test-body",
                    size="1",
                    font_family="monospace",
                    white_space="pre-wrap",
                    width="100%",
                ),
                spacing="2",
                width="100%",
            ),
            id="webhook-test-answer",
            width="100%",
        ),
    )


def _footer() -> rx.Component:
    editing = WebhookFormState.sub_id != 0
    return rx.hstack(
        rx.cond(
            editing,
            rx.hstack(
                rx.button(
                    rx.icon("send", size=14),
                    "Send test event",
                    on_click=WebhookFormState.send_test,
                    id="webhook-send-test",
                    variant="soft",
                    loading=WebhookFormState.busy,
                ),
                rx.button(
                    rx.icon("rotate-cw", size=14),
                    "Rotate secret",
                    on_click=WebhookFormState.rotate_secret,
                    id="webhook-rotate",
                    variant="soft",
                    color_scheme="amber",
                ),
            ),
        ),
        rx.spacer(),
        rx.dialog.close(
            rx.button("Close", variant="soft", color_scheme="gray", id="webhook-close")
        ),
        rx.button(
            rx.cond(editing, "Save", "Create"),
            on_click=WebhookFormState.submit,
            id="webhook-save",
            loading=WebhookFormState.busy,
        ),
        width="100%",
    )


def webhook_modal() -> rx.Component:
    """Create or edit a subscription (rendered for operators only)."""
    return rx.dialog.root(
        dialog_content(
            rx.cond(WebhookFormState.sub_id != 0, "Edit webhook subscription",
                    "New webhook subscription"),
            rx.vstack(
                rx.cond(WebhookFormState.errors["form"] != "",
                        rx.callout(WebhookFormState.errors["form"], color_scheme="red",
                                   width="100%")),
                secret_callout(),
                text_field("Name", "name", "name", placeholder="Care team notifier"),
                text_field("URL", "url", "url", placeholder="https://receiver.example/hook"),
                event_checkboxes(),
                rx.hstack(
                    _connection_select(),
                    text_field("Only resource types", "resource_types", "filter_resource_types",
                               placeholder="Patient, Observation (empty: all)"),
                    spacing="3", width="100%",
                ),
                _delivery_fields(),
                content_checkbox(),
                test_answer(),
                spacing="3",
                width="100%",
            ),
            footer=_footer(),
            max_width="52em",
            id="webhook-modal",
        ),
        open=WebhookFormState.open,
        on_open_change=WebhookFormState.set_open,
    )  # fmt: skip
