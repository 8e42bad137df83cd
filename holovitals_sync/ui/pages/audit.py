"""The Audit page: who did what, newest first, searchable and paged on the server."""

from __future__ import annotations

import reflex as rx

from ..components.layout import admin_only, empty_state, page_frame
from ..state.audit import AuditState

__all__ = ["AuditState", "audit_page"]
COLUMNS = ["#", "When (UTC)", "Who", "Action", "Target", "Outcome", "Details"]


def _filter(
    name: str, label: str, placeholder: str, kind: str = "text", width: str = "11em"
) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", weight="medium"),
        rx.input(name=name, placeholder=placeholder, type=kind, id=f"audit-{name}",
                 default_value=AuditState.filters.get(name, ""), size="2", width=width,
                 title=placeholder),
        rx.cond(AuditState.filter_errors.contains(name),
                rx.text(AuditState.filter_errors[name], size="1", color_scheme="red")),
        spacing="1",
    )  # fmt: skip


def _filters() -> rx.Component:
    return rx.form(
        rx.hstack(
            # Wide enough for its whole hint (a cut-off placeholder reads as a broken one).
            _filter("text", "Search", "Any word: action, id or setting", width="17em"),
            _filter("actor", "Who", "username"),
            _filter("action", "Action", "connection.create"),
            _filter("target", "Target", "connection 3"),
            _filter("since", "From", "", "date"),
            _filter("until", "To", "", "date"),
            rx.button(rx.icon("search", size=14), "Search", type="submit", id="audit-search"),
            rx.button("Clear", type="button", variant="soft", color_scheme="gray",
                      on_click=AuditState.clear),
            align="end", spacing="3", wrap="wrap",
        ),
        on_submit=AuditState.apply,
        reset_on_submit=False,
        width="100%",
    )  # fmt: skip


def _outcome(value: rx.Var) -> rx.Component:
    return rx.badge(value, color_scheme=rx.match(value, ("success", "green"), ("failed", "red"),
                                                  ("denied", "amber"), "gray"))  # fmt: skip


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["seq"]),
        rx.table.cell(row["at"], white_space="nowrap"),
        rx.table.cell(row["actor"]),
        rx.table.cell(rx.code(row["action"], size="1")),
        rx.table.cell(rx.text(row["target"], title=row["target_code"], size="2")),
        rx.table.cell(_outcome(row["outcome"])),
        rx.table.cell(rx.text(row["details"], size="1", color_scheme="gray", max_width="28em",
                              overflow="hidden", text_overflow="ellipsis",
                              white_space="nowrap", title=row["details_json"])),
        class_name="audit-row",
    )  # fmt: skip


def _table() -> rx.Component:
    return rx.cond(
        AuditState.rows.length() > 0,
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in COLUMNS])),
            rx.table.body(rx.foreach(AuditState.rows, _row)),
            width="100%", variant="surface", size="1", id="audit-table",
        ),
        empty_state("No audit entries match."),
    )  # fmt: skip


def _pager() -> rx.Component:
    return rx.hstack(
        rx.button("Newer", size="1", variant="soft", disabled=AuditState.page_number <= 1,
                  on_click=AuditState.newer, id="audit-newer"),
        rx.text("Page ", AuditState.page_number, size="2"),
        rx.button("Older", size="1", variant="soft", disabled=AuditState.next_before == 0,
                  on_click=AuditState.older, id="audit-older"),
        align="center", spacing="3",
    )  # fmt: skip


def _chain() -> rx.Component:
    color = rx.match(AuditState.chain_state, ("ok", "green"), ("broken", "red"), "gray")
    return admin_only(rx.hstack(
        rx.cond(AuditState.chain_state != "",
                rx.badge(rx.icon("shield-check", size=14), AuditState.chain_message,
                         color_scheme=color,
                         size="2", id="audit-chain")),
        rx.button("Verify chain", size="1", variant="soft", on_click=AuditState.verify,
                  loading=AuditState.busy, id="audit-verify"),
        align="center", spacing="3",
    ))  # fmt: skip


def audit_page() -> rx.Component:
    return page_frame(
        "Audit log",
        rx.cond(
            AuditState.allowed,
            rx.vstack(_chain(), _filters(), _table(), _pager(), spacing="4", width="100%"),
            empty_state("The audit log is open to operators and administrators."),
        ),
    )
