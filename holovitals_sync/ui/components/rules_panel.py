"""Transformation rules of the open connection, their editor dialog and the dry run.

Built from the parts it shares with the validation rules panel (`rule_editor.py`); here are
this list's columns, the editor dialog's fields and the dry run's direction, changes, and
the resource before and after.
"""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx
from reflex.event import EventSpec

from ..state.rules import RulesState
from .layout import admin_only, dialog_content
from .rule_editor import (
    Row,
    add_button,
    clipped,
    editor_card,
    labelled,
    list_controls,
    rule_table,
    sample_card,
    sample_divider,
    sample_lines,
)


def _actions(rule: Row) -> rx.Component:
    """Only the connection's own rules change here; a global one is every connection's."""
    return admin_only(rx.cond(
        rule["scope"] == "connection",
        list_controls(RulesState, rule, edit=RulesState.open_edit(rule["id"])),
        rx.badge("global", color_scheme="gray"),
    ))  # fmt: skip


def _row(rule: Row) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rule["position"]),
        rx.table.cell(rx.badge(rule["kind"])),
        rx.table.cell(rule["resource_type"]),
        rx.table.cell(rule["direction"]),
        rx.table.cell(clipped(rule["params"])),
        rx.table.cell(rx.cond(rule["enabled"] == "yes", "on", "off")),
        rx.table.cell(_actions(rule)),
        class_name="rule-row",
    )


def rules_table() -> rx.Component:
    headers = ["#", "Kind", "Type", "Direction", "Parameters", "Enabled", ""]
    return rule_table(RulesState, headers, _row, ident="rules-table",
                      empty="No rules: resources are stored as the EHR sends them.")  # fmt: skip


def _labelled(label: str, control: rx.Component, name: str) -> rx.Component:
    return labelled(label, control, errors=RulesState.editor_errors, name=name, prefix="rule",
                    width="100%")  # fmt: skip


def _set(name: str) -> Callable[[rx.Var], EventSpec]:
    """The field's `on_change`."""
    return lambda value: RulesState.set_editor_value(name, value)


def rule_dialog() -> rx.Component:
    values = RulesState.editor_values
    return rx.dialog.root(
        dialog_content(
            rx.cond(RulesState.editor_id == 0, "Add rule", "Edit rule"),
            rx.vstack(
                rx.hstack(
                    _labelled("Kind", rx.select(RulesState.kinds, value=values["kind"],
                                                id="rule-kind",
                                                on_change=_set("kind")), "kind"),
                    _labelled("Resource type", rx.input(value=values["resource_type"],
                                                        on_change=_set("resource_type"),
                                                        id="rule-type"), "resource_type"),
                    _labelled("Direction", rx.select(RulesState.directions,
                                                     value=values["direction"],
                                                     on_change=_set("direction")), "direction"),
                    width="100%",
                ),
                _labelled("Parameters (JSON)", rx.text_area(
                    value=values["params"], on_change=_set("params"), id="rule-params",
                    rows="8", font_family="monospace", width="100%"), "params"),
                _labelled("Description", rx.input(value=values["description"],
                                                  on_change=_set("description")), "description"),
                spacing="3",
                padding_y="1em",
            ),
            footer=rx.hstack(
                rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.button("Save rule", on_click=RulesState.save_rule, id="rule-save"),
                justify="end",
                spacing="3",
            ),
            max_width="40em",
            id="rule-dialog",
        ),
        open=RulesState.editor_open,
        on_open_change=RulesState.set_editor_open,
    )  # fmt: skip


def _change_line(line: Row) -> rx.Component:
    return rx.hstack(
        rx.cond(line["ok"] == "yes", rx.icon("pencil-line", size=14, color=rx.color("teal", 10)),
                rx.icon("triangle-alert", size=14, color=rx.color("red", 10))),
        rx.text("rule ", line["rule_id"], " (", line["kind"], "): ", line["what"], size="2"),
        align="center",
        class_name="dry-run-change",
    )  # fmt: skip


def _before_after() -> rx.Component:
    return rx.grid(
        rx.vstack(rx.text("Before", weight="medium"),
                  rx.code_block(RulesState.dry_before, language="json", width="100%"),
                  id="dry-run-before"),
        rx.vstack(rx.text("After", weight="medium"),
                  rx.code_block(RulesState.dry_after, language="json", width="100%"),
                  id="dry-run-after"),
        columns="2", spacing="3", width="100%",
    )  # fmt: skip


def dry_run_card() -> rx.Component:
    run = rx.hstack(
        rx.select(RulesState.directions, value=RulesState.dry_direction,
                  on_change=RulesState.set_dry_direction, size="2"),
        rx.button(rx.icon("flask-conical", size=14), "Dry run", on_click=RulesState.dry_run,
                  id="dry-run"),
    )  # fmt: skip
    changes = sample_lines(RulesState, _change_line, empty="No rule changed anything.",
                           ident="dry-run-changes")  # fmt: skip
    return sample_card(RulesState, title="Dry run",
                       note="Paste a sample resource; nothing is saved.", rows="7",
                       sample_id="dry-run-sample", error_id="dry-run-error", run=run,
                       result=rx.vstack(changes, _before_after(), width="100%"))  # fmt: skip


def rules_card() -> rx.Component:
    return editor_card(
        "Transformation rules",
        add_button("Add rule", RulesState.open_new, "rule-add"),
        rules_table(),
        sample_divider(),
        dry_run_card(),
        rule_dialog(),
    )
