"""The parts both rule panels of a connection are built from: the transformation rules
(`rules_panel.py`) and the custom validation rules (`validation_rules_panel.py`).

A builder takes the panel's state (a `RuleEditor`, whose list, sample and handlers both
editors have) or the Var it shows; the panels keep their columns, their fields and their
words, and pass the ids and class names the browser tests look for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reflex as rx
from reflex.event import EventType
from reflex.vars import ObjectVar

from ..state.rule_editor import RuleEditor
from .layout import admin_only, operator_only

Row = ObjectVar[dict[str, str]]  # one rule, or one line of a sample's result


def clipped(text: rx.Var) -> rx.Component:
    """A long value on one line, cut with an ellipsis; the whole of it in its tooltip."""
    return rx.text(text, size="1", font_family="monospace", max_width="22em", overflow="hidden",
                   text_overflow="ellipsis", white_space="nowrap", title=text)  # fmt: skip


def _icon_button(icon: str, label: str, on_click: EventType[()], **props: Any) -> rx.Component:
    return rx.icon_button(rx.icon(icon, size=14), size="1", variant="ghost", on_click=on_click,
                          aria_label=label, **props)  # fmt: skip


def _named(prefix: str | None, part: str) -> str | None:
    """A control's class name, `<prefix>-<part>`; None (no class) without a prefix."""
    return f"{prefix}-{part}" if prefix else None


def list_controls(
    state: type[RuleEditor],
    rule: Row,
    *,
    edit: EventType[()] | None = None,
    prefix: str | None = None,
) -> rx.Component:
    """One rule's switch, moves and delete (`RuleListActions`), with an edit button if given.

    The caller shows them to admins only; `prefix` names the switch and the delete button."""
    rid = rule["id"]
    edit_button: list[rx.Component] = [] if edit is None else [_icon_button("pencil", "Edit", edit)]
    return rx.hstack(
        rx.switch(checked=rule["enabled"] == "yes", size="1", class_name=_named(prefix, "toggle"),
                  on_change=lambda on: state.toggle(rid, on)),
        _icon_button("arrow-up", "Move up", state.move(rid, "up")),
        _icon_button("arrow-down", "Move down", state.move(rid, "down")),
        *edit_button,
        _icon_button("trash-2", "Delete", state.delete(rid), color_scheme="red",
                     class_name=_named(prefix, "delete")),
        spacing="2",
        align="center",
    )  # fmt: skip


def rule_table(
    state: type[RuleEditor],
    headers: list[str],
    row: Callable[[Row], rx.Component],
    *,
    ident: str,
    empty: str,
    empty_id: str | None = None,
) -> rx.Component:
    """The rules in their order, one `row` each; `empty` says what an empty list means."""
    return rx.cond(
        state.rules.length() > 0,
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            rx.table.body(rx.foreach(state.rules, row)),
            width="100%",
            size="1",
            id=ident,
        ),
        rx.text(empty, size="2", color_scheme="gray", id=empty_id),
    )


def labelled(
    label: str,
    control: rx.Component,
    *,
    errors: ObjectVar[dict[str, str]],
    name: str,
    prefix: str,
    **props: Any,
) -> rx.Component:
    """A form field: its label, its control and its save's message (id `<prefix>-error-<name>`)."""
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        control,
        rx.cond(
            errors.contains(name),
            rx.text(errors[name], size="1", color_scheme="red", id=f"{prefix}-error-{name}"),
        ),
        spacing="1",
        **props,
    )


def sample_card(
    state: type[RuleEditor],
    *,
    title: str,
    note: str,
    rows: str,
    sample_id: str,
    error_id: str,
    run: rx.Component,
    result: rx.Component,
) -> rx.Component:
    """The sample's text area, why it is refused, the `run` controls and, once run, `result`.

    Operators and admins only: the run reads the connection's rules, and viewers do not."""
    return operator_only(rx.vstack(
        rx.heading(title, size="3"),
        rx.text(note, size="2", color_scheme="gray"),
        rx.text_area(value=state.sample, on_change=state.set_sample, rows=rows, id=sample_id,
                     font_family="monospace", width="100%"),
        rx.cond(state.sample_error != "",
                rx.text(state.sample_error, size="1", color_scheme="red", id=error_id)),
        run,
        rx.cond(state.sample_done, result),
        spacing="2",
        width="100%",
    ))  # fmt: skip


def sample_lines(
    state: type[RuleEditor], line: Callable[[Row], rx.Component], *, empty: str, ident: str
) -> rx.Component:
    """The last run's lines, or `empty` when it had none to show; `ident` either way."""
    return rx.cond(
        state.sample_lines.length() > 0,
        rx.vstack(rx.foreach(state.sample_lines, line), spacing="1", id=ident),
        rx.text(empty, size="2", id=ident),
    )


def sample_divider() -> rx.Component:
    """Between the list and the sample card, which viewers are not given."""
    return operator_only(rx.divider())


def add_button(label: str, on_click: EventType[()], ident: str) -> rx.Component:
    """The panel's add button, for admins only."""
    return admin_only(rx.button(rx.icon("plus", size=14), label, on_click=on_click, id=ident,
                                size="2"))  # fmt: skip


def editor_card(title: str, add: rx.Component, *parts: rx.Component, **props: Any) -> rx.Component:
    """The panel: its title and `add` button above `parts`."""
    header = rx.hstack(rx.heading(title, size="3"), rx.spacer(), add, width="100%")
    return rx.card(rx.vstack(header, *parts, spacing="3", width="100%"), width="100%", **props)
