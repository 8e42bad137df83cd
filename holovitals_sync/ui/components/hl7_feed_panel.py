"""The connection page's HL7 ADT feed card: mapped senders, live activity, rejects."""

from __future__ import annotations

import reflex as rx

from ..state.connections import ConnectionsState
from ..state.hl7_feeds import HL7FeedState
from .layout import admin_only


def _table(
    headers: list[str], rows: rx.Var, cells: list[str], empty: str, ident: str
) -> rx.Component:
    return rx.cond(
        rows.length() > 0,
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            rx.table.body(rx.foreach(rows, lambda r: rx.table.row(
                *[rx.table.cell(r[c]) for c in cells]))),
            size="1", width="100%", id=ident,
        ),
        rx.text(empty, size="2", color_scheme="gray"),
    )  # fmt: skip


def _feeds() -> rx.Component:
    return rx.vstack(
        rx.cond(HL7FeedState.feeds.length() > 0, rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in
                                           ("Sending application (MSH-3)",
                                            "Facility (MSH-4)", "Authorities", "")])),
            rx.table.body(rx.foreach(HL7FeedState.feeds, lambda f: rx.table.row(
                rx.table.cell(f["application"]), rx.table.cell(f["facility"]),
                rx.table.cell(f["systems"]),
                rx.table.cell(admin_only(rx.icon_button(
                    rx.icon("trash-2", size=14), size="1", variant="ghost", color_scheme="red",
                    on_click=HL7FeedState.remove_feed(f["id"]), aria_label="Unmap sender"))),
                class_name="hl7-feed-row"))),
            size="1", width="100%", id="hl7-feeds"),
            rx.text("No sender is mapped: ADT messages for this connection are refused (AR).",
                    size="2", color_scheme="gray")),
        admin_only(rx.hstack(
            rx.input(placeholder="Sending application", value=HL7FeedState.new_application,
                     on_change=HL7FeedState.set_new_application, id="hl7-new-application"),
            rx.input(placeholder="Facility (empty: any)", value=HL7FeedState.new_facility,
                     on_change=HL7FeedState.set_new_facility, id="hl7-new-facility"),
            rx.button(rx.icon("plus", size=14), "Map sender", on_click=HL7FeedState.add_feed,
                      id="hl7-add-feed", size="2"),
            spacing="2")),
        width="100%", spacing="2",
    )  # fmt: skip


def _bars() -> rx.Component:
    return rx.hstack(
        rx.foreach(
            HL7FeedState.bars,
            lambda b: rx.box(
                width="8px", height=b["pct"], title=b["n"], background_color=rx.color("accent", 9)
            ),
        ),
        align="end",
        spacing="1",
        height="32px",
        id="hl7-bars",
    )


def _activity() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.vstack(rx.text("Last message", size="1", color_scheme="gray"),
                      rx.text(HL7FeedState.last, size="2", id="hl7-last"), spacing="0"),
            rx.vstack(rx.text("This minute", size="1", color_scheme="gray"),
                      rx.text(HL7FeedState.this_minute, size="2",
                              id="hl7-this-minute"), spacing="0"),
            rx.vstack(rx.text("ACKs today", size="1", color_scheme="gray"),
                      rx.text(HL7FeedState.acks, size="2", id="hl7-acks"), spacing="0"),
            rx.vstack(rx.text("Stored", size="1", color_scheme="gray"),
                      rx.text(HL7FeedState.stored, size="2", id="hl7-stored"), spacing="0"),
            rx.vstack(rx.text("Last 15 minutes", size="1", color_scheme="gray"), _bars(),
                      spacing="0"),
            spacing="6", wrap="wrap",
        ),
        rx.heading("Connected senders", size="2"),
        _table(["Peer", "Sender", "Connected since", "Messages"], HL7FeedState.senders,
               ["peer", "sender", "since", "messages"], "No sender is connected.",
               "hl7-senders"),
        rx.heading("Rejects", size="2"),
        _table(["Reason", "Count"], HL7FeedState.rejects, ["reason", "count"], "No rejects.",
               "hl7-rejects"),
        rx.heading("Newest messages", size="2"),
        _table(["Control id", "Event", "Status", "Outcome", "Patient", "Job", "Received"],
               HL7FeedState.messages, ["control_id", "event", "status", "outcome", "patient", "job",
                            "received"], "No message stored yet.", "hl7-messages"),
        width="100%", spacing="2",
    )  # fmt: skip


def hl7_feed_card() -> rx.Component:
    """The card; keyed on the open connection so it loads again when that changes."""
    card = rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("HL7 ADT feed", size="3"),
                rx.spacer(),
                rx.button(
                    rx.icon("refresh-cw", size=14),
                    "Refresh",
                    on_click=HL7FeedState.refresh,
                    variant="soft",
                    size="1",
                    id="hl7-refresh",
                ),
                width="100%",
            ),
            rx.text(
                "Admissions, discharges, registrations and updates sent over MLLP by the "
                "senders below become patient syncs.",
                size="2",
                color_scheme="gray",
            ),
            _feeds(),
            rx.divider(),
            _activity(),
            spacing="3",
            width="100%",
        ),
        width="100%",
        id="hl7-feed",
        on_mount=HL7FeedState.load_for(ConnectionsState.selected_id),
    )
    return rx.box(card, key=ConnectionsState.selected_id, width="100%")  # fmt: skip
