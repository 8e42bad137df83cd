"""The Webhooks tab of the sync dashboard (also reachable at /webhooks).

Subscriptions with their health, the delivery log with redelivery, inbound counts per
connection, and the configuration modal. Mutating controls render for operators only.
"""

from __future__ import annotations

import reflex as rx

from ..components.layout import data_table, empty_state, operator_only, page_frame
from ..components.webhooks_modal import webhook_modal
from ..state.live import LiveState
from ..state.webhook_form import WebhookFormState
from ..state.webhooks import DELIVERY_STATUSES, WebhooksState

# /webhooks follows subscription, delivery and inbound changes live, as the dashboard's tab.
ON_LOAD = [WebhooksState.load, LiveState.watch_webhooks]

__all__ = ["ON_LOAD", "WebhooksState", "webhooks_page", "webhooks_tab"]


def _health(row: rx.Var) -> rx.Component:
    return rx.badge(
        row["health"],
        color_scheme=rx.match(row["health"], ("active", "green"), ("auto-disabled", "red"), "gray"),
        class_name="webhook-health",
    )


def _sub_actions(row: rx.Var) -> rx.Component:
    active = row["active"] == "yes"
    return operator_only(
        rx.hstack(
            rx.button(
                "Edit",
                on_click=WebhookFormState.open_edit(row["id"]),
                size="1",
                variant="soft",
                class_name="webhook-edit",
            ),
            rx.button(
                rx.cond(active, "Disable", "Enable"),
                on_click=WebhooksState.set_active(row["id"], ~active),
                size="1",
                variant="soft",
                color_scheme=rx.cond(active, "gray", "green"),
                class_name="webhook-toggle",
            ),
            rx.button(
                "Delete",
                on_click=WebhooksState.ask_delete(row["id"], row["name"]),
                size="1",
                variant="soft",
                color_scheme="red",
                class_name="webhook-delete",
            ),
            spacing="1",
        )
    )


def _sub_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        # Long names and URLs wrap in their cell instead of widening the table.
        rx.table.cell(
            rx.text(row["name"], weight="medium", overflow_wrap="anywhere"),
            rx.text(row["url"], size="1", color_scheme="gray", overflow_wrap="anywhere"),
            rx.cond(
                row["content"] == "yes",
                rx.badge(
                    "sends clinical content",
                    color_scheme="amber",
                    size="1",
                    class_name="webhook-content",
                ),
            ),
            max_width="22em",
        ),
        rx.table.cell(_health(row)),
        rx.table.cell(row["last_delivery"]),
        rx.table.cell(row["last_status"], " ", rx.text.span(row["last_code"], color="gray")),
        rx.table.cell(row["failure_streak"]),
        rx.table.cell(row["events"]),
        rx.table.cell(_sub_actions(row)),
        class_name="webhook-row",
        id="webhook-row-" + row["id"],
    )


def _pager(
    prev_ok: rx.Var, next_ok: rx.Var, handler: rx.event.EventHandler, prefix: str
) -> rx.Component:
    return rx.hstack(
        rx.button(
            rx.icon("chevron-left", size=14),
            "Previous",
            on_click=handler(False),
            disabled=~prev_ok,
            size="1",
            variant="soft",
            id=f"{prefix}-prev",
        ),
        rx.button(
            "Next",
            rx.icon("chevron-right", size=14),
            on_click=handler(True),
            disabled=~next_ok,
            size="1",
            variant="soft",
            id=f"{prefix}-next",
        ),
        justify="end",
        width="100%",
    )


def subscriptions_table() -> rx.Component:
    headers = [
        "Subscription",
        "Health",
        "Last delivery (UTC)",
        "Last status",
        "Failures in a row",
        "Events",
        "",
    ]
    return rx.vstack(
        rx.hstack(
            rx.heading("Subscriptions", size="4"),
            rx.spacer(),
            operator_only(
                rx.button(
                    rx.icon("plus", size=14),
                    "New subscription",
                    on_click=WebhookFormState.open_create,
                    id="webhook-new",
                )
            ),
            width="100%",
        ),
        rx.cond(
            WebhooksState.rows.length() > 0,  # type: ignore[attr-defined]
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
                rx.table.body(rx.foreach(WebhooksState.rows, _sub_row)),
                width="100%",
                variant="surface",
                id="webhook-subscriptions",
            ),
            empty_state("No webhook subscriptions yet."),
        ),
        _pager(
            WebhooksState.sub_back.length() > 0,  # type: ignore[attr-defined]
            WebhooksState.sub_next != 0,
            WebhooksState.subs_page,
            "webhook-subs",
        ),
        width="100%",
    )


def _delivery_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["created"]),
        rx.table.cell(rx.text(row["subscription"], overflow_wrap="anywhere"), max_width="14em"),
        rx.table.cell(row["event_type"]),
        rx.table.cell(
            rx.badge(
                row["status"],
                color_scheme=rx.match(
                    row["status"],
                    ("delivered", "green"),
                    ("failed", "red"),
                    ("retrying", "amber"),
                    "gray",
                ),
            )
        ),
        rx.table.cell(row["attempts"]),
        rx.table.cell(row["code"], " · ", row["ms"], " ms"),
        rx.table.cell(rx.text(row["error"], size="1", color_scheme="red")),
        rx.table.cell(
            operator_only(
                rx.button(
                    rx.icon("refresh-cw", size=12),
                    "Redeliver",
                    on_click=WebhooksState.redeliver(row["id"]),
                    size="1",
                    variant="soft",
                    class_name="delivery-redeliver",
                )
            )
        ),
        class_name="delivery-row",
    )


def _delivery_filters() -> rx.Component:
    return rx.hstack(
        rx.select.root(
            rx.select.trigger(id="delivery-filter-subscription"),
            rx.select.content(
                rx.select.item("all subscriptions", value="all"),
                rx.foreach(
                    WebhooksState.sub_names, lambda s: rx.select.item(s["name"], value=s["id"])
                ),
            ),
            value=WebhooksState.delivery_sub,
            on_change=lambda v: WebhooksState.filter_deliveries("subscription", v),
        ),
        rx.select(
            DELIVERY_STATUSES,
            value=WebhooksState.delivery_status,
            on_change=lambda v: WebhooksState.filter_deliveries("status", v),
            id="delivery-filter-status",
        ),
        spacing="2",
    )


def delivery_log() -> rx.Component:
    headers = [
        "Created (UTC)",
        "Subscription",
        "Event",
        "Status",
        "Attempts",
        "Answer",
        "Error",
        "",
    ]
    return rx.vstack(
        rx.hstack(
            rx.heading("Delivery log", size="4"), rx.spacer(), _delivery_filters(), width="100%"
        ),
        rx.cond(
            WebhooksState.deliveries.length() > 0,  # type: ignore[attr-defined]
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
                rx.table.body(rx.foreach(WebhooksState.deliveries, _delivery_row)),
                width="100%",
                variant="surface",
                id="webhook-deliveries",
            ),
            empty_state("No deliveries match."),
        ),
        _pager(
            WebhooksState.delivery_back.length() > 0,  # type: ignore[attr-defined]
            WebhooksState.delivery_next != 0,
            WebhooksState.deliveries_page,
            "webhook-deliveries",
        ),
        width="100%",
    )


def inbound_table() -> rx.Component:
    return rx.vstack(
        rx.heading("Inbound events per connection", size="4"),
        data_table(
            WebhooksState.inbound,
            [
                ("Connection", "connection"),
                ("Auth", "auth"),
                ("Received", "received"),
                ("Processed", "processed"),
                ("Duplicates", "duplicates"),
                ("Rejected", "rejected"),
                ("Failed", "failed"),
                ("Rejections", "rejections"),
                ("Last received (UTC)", "last"),
            ],
            "No connections yet.",
        ),
        width="100%",
        id="webhook-inbound",
    )


def delete_confirmation() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Delete subscription"),
            rx.alert_dialog.description(
                "Delete ",
                rx.text.strong(WebhooksState.confirm_delete_name),
                "? Its delivery log goes with it and queued deliveries end.",
            ),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button(
                        "Cancel",
                        variant="soft",
                        color_scheme="gray",
                        on_click=WebhooksState.cancel_delete,
                    )
                ),
                rx.alert_dialog.action(
                    rx.button(
                        "Delete",
                        color_scheme="red",
                        on_click=WebhooksState.confirm_delete,
                        id="webhook-delete-confirm",
                    )
                ),
                justify="end",
                spacing="2",
                padding_top="1em",
            ),
        ),
        open=WebhooksState.confirm_delete_id != "",
    )


def webhooks_tab() -> rx.Component:
    return rx.vstack(
        subscriptions_table(),
        delivery_log(),
        inbound_table(),
        operator_only(webhook_modal()),
        operator_only(delete_confirmation()),
        spacing="5",
        width="100%",
    )


def webhooks_page() -> rx.Component:
    return page_frame("Webhooks", webhooks_tab())
