"""The conflict resolution modal: base, local and remote side by side, then the decision."""

from __future__ import annotations

import reflex as rx

from ...services import labels
from ..state.conflicts import STRATEGIES, ConflictModalState
from .layout import dialog_content, operator_only

LOCAL_BG = rx.color("amber", 3)
REMOTE_BG = rx.color("blue", 3)


def _value(
    text: rx.Var, background: rx.Var | str | None = None, class_name: str = ""
) -> rx.Component:
    return rx.table.cell(
        # Long codes and URLs wrap inside their column instead of widening the modal.
        rx.text(
            text,
            white_space="pre-wrap",
            overflow_wrap="anywhere",
            font_family="monospace",
            size="1",
        ),
        background_color=background,
        class_name=class_name,
    )


def _element_row(row: rx.Var) -> rx.Component:
    """A conflicting element: both changed values highlighted against the base."""
    return rx.table.row(
        rx.table.cell(rx.code(row["path"])),
        _value(row["base"]),
        _value(row["local"], LOCAL_BG, "conflict-local differs"),
        _value(row["remote"], REMOTE_BG, "conflict-remote differs"),
        class_name="conflict-element",
    )


def elements_table() -> rx.Component:
    return rx.table.root(
        rx.table.header(
            rx.table.row(
                *[
                    rx.table.column_header_cell(h)
                    for h in ("Element", "Agreed before", "HoloVitals", "EHR")
                ]
            )
        ),
        rx.table.body(rx.foreach(ConflictModalState.elements, _element_row)),
        width="100%",
        variant="surface",
        id="conflict-elements",
        table_layout="fixed",
    )


def _record_row(row: rx.Var) -> rx.Component:
    differs = row["differs"] == "yes"
    return rx.table.row(
        rx.table.cell(rx.text(row["element"], weight=rx.cond(differs, "bold", "regular"))),
        _value(row["base"]),
        _value(row["local"], rx.cond(differs, LOCAL_BG, None)),
        _value(row["remote"], rx.cond(differs, REMOTE_BG, None)),
        class_name=rx.cond(differs, "record-element differs", "record-element"),
    )


def record_table() -> rx.Component:
    """The whole record, element by element; differing ones highlighted."""
    return rx.accordion.root(
        rx.accordion.item(
            header=rx.text("Whole record side by side", id="conflict-record-toggle"),
            content=rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(h)
                            for h in ("Element", "Agreed before", "HoloVitals", "EHR")
                        ]
                    )
                ),
                rx.table.body(rx.foreach(ConflictModalState.record, _record_row)),
                width="100%",
                size="1",
                table_layout="fixed",
            ),
            value="record",
        ),
        collapsible=True,
        type="single",
        width="100%",
        variant="ghost",
    )


def _choices(values: list[str], words: dict[str, str], **props: object) -> rx.Component:
    """Radio buttons labelled in words; the machine value is the item's value and tooltip."""
    return rx.radio_group.root(
        rx.flex(*[rx.text(rx.flex(rx.radio_group.item(value=v), words[v], spacing="2"),
                          as_="label", size="2", title=v)
                  for v in values], spacing="4", wrap="wrap"),
        **props,
    )  # fmt: skip


def _merge_choice(row: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.code(row["path"]),
        _choices(
            ["local", "remote"],
            labels.SIDES,
            value=ConflictModalState.choices[row["path"]],
            on_change=lambda v: ConflictModalState.set_choice(row["path"], v),
        ),
        spacing="3",
        align="center",
    )


def decision() -> rx.Component:
    return rx.vstack(
        rx.text("Strategy", size="2", weight="medium"),
        _choices(
            STRATEGIES,
            labels.STRATEGIES,
            value=ConflictModalState.strategy,
            on_change=ConflictModalState.set_strategy,
            id="conflict-strategy",
        ),
        rx.text(
            rx.match(ConflictModalState.strategy, *labels.STRATEGY_HELP.items(), ""),
            size="1",
            color_scheme="gray",
        ),
        rx.cond(
            ConflictModalState.strategy == "merge",
            rx.vstack(rx.foreach(ConflictModalState.elements, _merge_choice), spacing="1"),
        ),
        rx.cond(
            ConflictModalState.strategy == "manual",
            rx.vstack(
                rx.text("Value per element (JSON)", size="2", weight="medium"),
                rx.text_area(
                    value=ConflictModalState.manual,
                    on_change=ConflictModalState.set_manual,
                    id="conflict-manual",
                    rows="6",
                    width="100%",
                    font_family="monospace",
                ),
                rx.cond(
                    ConflictModalState.manual_error != "",
                    rx.text(
                        ConflictModalState.manual_error,
                        color_scheme="red",
                        size="1",
                        id="conflict-manual-error",
                    ),
                ),
                width="100%",
                spacing="1",
            ),
        ),
        rx.text("Reason (required)", size="2", weight="medium"),
        rx.text_area(
            value=ConflictModalState.reason,
            on_change=ConflictModalState.set_reason,
            id="conflict-reason",
            placeholder="Checked with the care team: …",
            rows="2",
            width="100%",
        ),
        rx.cond(
            ConflictModalState.reason_error != "",
            rx.text(
                ConflictModalState.reason_error,
                color_scheme="red",
                size="1",
                id="conflict-reason-error",
            ),
        ),
        rx.cond(
            ConflictModalState.form_error != "",
            rx.callout(
                ConflictModalState.form_error,
                color_scheme="red",
                width="100%",
                id="conflict-form-error",
            ),
        ),
        spacing="2",
        width="100%",
    )


def _header() -> rx.Component:
    s = ConflictModalState.summary
    return rx.hstack(
        rx.badge(
            s["severity"],
            id="conflict-severity",
            size="2",
            color_scheme=rx.match(s["severity"], ("high", "red"), ("medium", "amber"), "gray"),
        ),
        rx.text(s["resource"], weight="bold"),
        rx.text(s["connection"], color_scheme="gray", size="2"),
        rx.badge(s["kind_label"], variant="outline", title=s["kind"]),
        rx.badge(s["status"], variant="soft"),
        align="center",
        spacing="3",
    )


def conflict_modal() -> rx.Component:
    return rx.dialog.root(
        dialog_content(
            "Resolve conflict",
            rx.vstack(
                _header(),
                elements_table(),
                record_table(),
                rx.cond(ConflictModalState.summary["status"] == "open", operator_only(decision())),
                spacing="3", width="100%",
            ),
            footer=rx.hstack(
                rx.spacer(),
                rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray")),
                rx.cond(ConflictModalState.summary["status"] == "open", operator_only(rx.button(
                    "Resolve", on_click=ConflictModalState.submit,
                    loading=ConflictModalState.busy, id="conflict-resolve"))),
                width="100%",
            ),
            max_width="64em",
            id="conflict-modal",
        ),
        open=ConflictModalState.open,
        on_open_change=ConflictModalState.set_open,
    )  # fmt: skip
