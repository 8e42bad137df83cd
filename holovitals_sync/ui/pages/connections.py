"""The Connections page: every EHR connection (paged on the server), and the open one's
test, keys, schedule and transformation rules below the list."""

from __future__ import annotations

import reflex as rx

from ..components.connections_detail import keys_card, schedule_card, test_card
from ..components.connections_dialog import connection_dialog
from ..components.hl7_feed_panel import hl7_feed_card
from ..components.layout import admin_only, empty_state, page_frame
from ..components.rules_panel import rules_card
from ..components.validation_rules_panel import validation_rules_card
from ..state.connections import ConnectionsState

__all__ = ["ConnectionsState", "connections_page"]
COLUMNS = ["Name", "Vendor", "Status", "Last sync", "Schedule", "Last test", ""]


def _status(value: rx.Var) -> rx.Component:
    return rx.badge(value, color_scheme=rx.match(
        value, ("active", "green"), ("error", "red"), ("paused", "amber"), "gray"))  # fmt: skip


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(row["name"], on_click=ConnectionsState.select(row["id"]),
                              cursor="pointer",
                              overflow_wrap="anywhere"), max_width="20em"),
        rx.table.cell(row["vendor_label"]),
        rx.table.cell(_status(row["status"])),
        rx.table.cell(row["last_synced"]),
        rx.table.cell(rx.cond(row["schedule"] != "", rx.code(row["schedule"], size="1"),
                              rx.text("no schedule", size="2", color_scheme="gray"))),
        rx.table.cell(row["test"]),
        rx.table.cell(rx.hstack(
            rx.button("Open", size="1", variant="soft",
                      on_click=ConnectionsState.select(row["id"])),
            admin_only(rx.button("Edit", size="1", variant="outline", class_name="edit-button",
                                 on_click=ConnectionsState.open_edit(row["id"]))),
            spacing="2",
        )),
        class_name="connection-row",
    )  # fmt: skip


def connections_table() -> rx.Component:
    return rx.cond(
        ConnectionsState.rows.length() > 0,
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in COLUMNS])),
            rx.table.body(rx.foreach(ConnectionsState.rows, _row)),
            width="100%",
            variant="surface",
            id="connections-table",
        ),
        empty_state("No EHR connections yet."),
    )


def _toolbar() -> rx.Component:
    return rx.hstack(
        rx.input(rx.input.slot(rx.icon("search", size=14)), placeholder="Filter by name",
                 value=ConnectionsState.search, on_change=ConnectionsState.set_search,
                 width="18em"),
        rx.spacer(),
        admin_only(rx.button(rx.icon("plus", size=14), "Add connection",
                             on_click=ConnectionsState.open_add,
                             id="connection-add")),
        width="100%",
    )  # fmt: skip


def _pager() -> rx.Component:
    return rx.hstack(
        rx.button("Previous", size="1", variant="soft", disabled=ConnectionsState.page == 0,
                  on_click=ConnectionsState.turn_page(-1)),
        rx.text("Page ", ConnectionsState.page + 1, " of ", ConnectionsState.pages, " · ",
                ConnectionsState.total_text, size="2",
                id="connections-count"),
        rx.button("Next", size="1", variant="soft",
                  disabled=ConnectionsState.page + 1 >= ConnectionsState.pages,
                  on_click=ConnectionsState.turn_page(1)),
        align="center",
        spacing="3",
    )  # fmt: skip


def _detail() -> rx.Component:
    return rx.cond(ConnectionsState.selected_id != 0, rx.vstack(
        rx.hstack(
            rx.heading(ConnectionsState.selected["name"], size="5", id="detail-name",
                       overflow_wrap="anywhere"),
            rx.badge(ConnectionsState.selected["vendor_label"]),
            _status(ConnectionsState.selected["status"]),
            rx.spacer(),
            admin_only(rx.hstack(
                rx.text("Status", size="2"),
                rx.select(ConnectionsState.statuses, value=ConnectionsState.selected["status"],
                          on_change=ConnectionsState.set_status,
                          size="1", id="connection-status"),
                align="center", spacing="2",
            )),
            rx.icon_button(rx.icon("x", size=16), variant="ghost",
                           on_click=ConnectionsState.close_detail),
            align="center", width="100%",
        ),
        rx.grid(test_card(), schedule_card(), columns="2", spacing="4", width="100%"),
        keys_card(),
        rules_card(),
        validation_rules_card(),
        hl7_feed_card(),
        spacing="4",
        width="100%",
        id="connection-detail",
    ))  # fmt: skip


def connections_page() -> rx.Component:
    return page_frame(
        "Connections", _toolbar(), connections_table(), _pager(), _detail(), connection_dialog()
    )
