"""The Conflicts tab of the sync dashboard (also reachable at /conflicts).

One server-side page of conflicts, filtered by status, severity, connection and resource
type; a row opens the resolution modal.
"""

from __future__ import annotations

import reflex as rx

from ..components.conflicts_modal import conflict_modal
from ..components.layout import empty_state, page_frame
from ..state.conflicts import SEVERITIES, STATUSES, ConflictModalState, ConflictsState
from ..state.live import LiveState

# /conflicts follows conflict changes live, as the dashboard's tab does.
ON_LOAD = [ConflictsState.load, LiveState.watch_conflicts]

__all__ = ["ON_LOAD", "ConflictsState", "conflicts_page", "conflicts_tab"]


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.badge(
                row["severity"],
                color_scheme=rx.match(
                    row["severity"], ("high", "red"), ("medium", "amber"), "gray"
                ),
            )
        ),
        rx.table.cell(row["resource"]),
        rx.table.cell(row["connection"]),
        rx.table.cell(rx.code(row["fields"])),
        rx.table.cell(rx.text(row["kind_label"], title=row["kind"], size="2")),
        rx.table.cell(
            rx.vstack(
                rx.text(row["status"], size="2"),
                rx.cond(
                    row["write_back"] != "",
                    rx.text(
                        row["write_back_label"],
                        size="1",
                        color_scheme="gray",
                        title=row["write_back_error"],
                        class_name="conflict-write-back",
                    ),
                ),
                spacing="0",
            )
        ),
        rx.table.cell(row["created"]),
        rx.table.cell(
            rx.button(
                "Open",
                on_click=ConflictModalState.open_conflict(row["id"]),
                size="1",
                variant="soft",
                class_name="conflict-open",
            )
        ),
        class_name="conflict-row",
        id="conflict-row-" + row["id"],
    )


def _labelled(label: str, control: rx.Component) -> rx.Component:
    return rx.vstack(rx.text(label, size="1", color_scheme="gray"), control, spacing="1")


def _filters() -> rx.Component:
    return rx.hstack(
        _labelled(
            "Status",
            rx.select(
                STATUSES,
                value=ConflictsState.status,
                id="conflict-filter-status",
                on_change=lambda v: ConflictsState.set_filter("status", v),
            ),
        ),
        _labelled(
            "Severity",
            rx.select(
                SEVERITIES,
                value=ConflictsState.severity,
                id="conflict-filter-severity",
                on_change=lambda v: ConflictsState.set_filter("severity", v),
            ),
        ),
        _labelled(
            "Connection",
            rx.select.root(
                rx.select.trigger(id="conflict-filter-connection"),
                rx.select.content(
                    rx.select.item("all connections", value="all"),
                    rx.foreach(
                        ConflictsState.connections,
                        lambda c: rx.select.item(c["name"], value=c["id"]),
                    ),
                ),
                value=ConflictsState.connection,
                on_change=lambda v: ConflictsState.set_filter("connection", v),
            ),
        ),
        _labelled(
            "Resource type",
            rx.select(
                ConflictsState.resource_types,
                value=ConflictsState.resource_type,
                id="conflict-filter-type",
                on_change=lambda v: ConflictsState.set_filter("resource_type", v),
            ),
        ),
        spacing="3",
    )


def _pager() -> rx.Component:
    return rx.hstack(
        rx.button(
            rx.icon("chevron-left", size=14),
            "Previous",
            on_click=ConflictsState.page(False),
            disabled=ConflictsState.back.length() == 0,  # type: ignore[attr-defined]
            size="1",
            variant="soft",
            id="conflicts-prev",
        ),
        rx.button(
            "Next",
            rx.icon("chevron-right", size=14),
            on_click=ConflictsState.page(True),
            disabled=ConflictsState.next_cursor == 0,
            size="1",
            variant="soft",
            id="conflicts-next",
        ),
        justify="end",
        width="100%",
    )


def conflicts_tab() -> rx.Component:
    headers = [
        "Severity",
        "Resource",
        "Connection",
        "Elements",
        "What happened",
        "Status",
        "Found (UTC)",
        "",
    ]
    return rx.vstack(
        _filters(),
        rx.cond(
            ConflictsState.rows.length() > 0,  # type: ignore[attr-defined]
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
                rx.table.body(rx.foreach(ConflictsState.rows, _row)),
                width="100%",
                variant="surface",
                id="conflicts-table",
            ),
            empty_state("No conflicts match."),
        ),
        _pager(),
        conflict_modal(),
        spacing="4",
        width="100%",
    )


def conflicts_page() -> rx.Component:
    return page_frame("Conflicts", conflicts_tab())
