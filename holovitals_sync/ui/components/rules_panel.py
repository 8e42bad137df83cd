"""Transformation rules of the open connection, their editor dialog and the dry run."""

from __future__ import annotations

import reflex as rx

from ..state.rules import RulesState
from .layout import admin_only, dialog_content, operator_only


def _actions(rule: rx.Var) -> rx.Component:
    rid = rule["id"]
    return admin_only(rx.cond(
        rule["scope"] == "connection",
        rx.hstack(
            rx.switch(checked=rule["enabled"] == "yes", size="1",
                      on_change=lambda on: RulesState.toggle(rid, on)),
            rx.icon_button(rx.icon("arrow-up", size=14), size="1", variant="ghost",
                           on_click=RulesState.move(rid, "up"), aria_label="Move up"),
            rx.icon_button(rx.icon("arrow-down", size=14), size="1", variant="ghost",
                           on_click=RulesState.move(rid, "down"), aria_label="Move down"),
            rx.icon_button(rx.icon("pencil", size=14), size="1", variant="ghost",
                           on_click=RulesState.open_edit(rid), aria_label="Edit"),
            rx.icon_button(rx.icon("trash-2", size=14), size="1", variant="ghost",
                           color_scheme="red", on_click=RulesState.delete(rid),
                           aria_label="Delete"),
            spacing="2",
            align="center",
        ),
        rx.badge("global", color_scheme="gray"),
    ))  # fmt: skip


def _row(rule: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rule["position"]),
        rx.table.cell(rx.badge(rule["kind"])),
        rx.table.cell(rule["resource_type"]),
        rx.table.cell(rule["direction"]),
        rx.table.cell(
            rx.text(
                rule["params"],
                size="1",
                font_family="monospace",
                max_width="22em",
                overflow="hidden",
                text_overflow="ellipsis",
                white_space="nowrap",
                title=rule["params"],
            )
        ),
        rx.table.cell(rx.cond(rule["enabled"] == "yes", "on", "off")),
        rx.table.cell(_actions(rule)),
        class_name="rule-row",
    )


def rules_table() -> rx.Component:
    headers = ["#", "Kind", "Type", "Direction", "Parameters", "Enabled", ""]
    return rx.cond(
        RulesState.rules.length() > 0,
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            rx.table.body(rx.foreach(RulesState.rules, _row)),
            width="100%",
            size="1",
            id="rules-table",
        ),
        rx.text(
            "No rules: resources are stored as the EHR sends them.", size="2", color_scheme="gray"
        ),  # fmt: skip
    )


def _labelled(label: str, control: rx.Component, name: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        control,
        rx.cond(
            RulesState.editor_errors.contains(name),
            rx.text(
                RulesState.editor_errors[name],
                size="1",
                color_scheme="red",
                id=f"rule-error-{name}",
            ),
        ),  # fmt: skip
        spacing="1",
        width="100%",
    )


def _set(name: str):  # noqa: ANN202 - a lambda for on_change
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


def _change_line(line: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.cond(line["ok"] == "yes", rx.icon("pencil-line", size=14, color=rx.color("teal", 10)),
                rx.icon("triangle-alert", size=14, color=rx.color("red", 10))),
        rx.text("rule ", line["rule_id"], " (", line["kind"], "): ", line["what"], size="2"),
        align="center",
        class_name="dry-run-change",
    )  # fmt: skip


def dry_run_card() -> rx.Component:
    return operator_only(rx.vstack(
        rx.heading("Dry run", size="3"),
        rx.text("Paste a sample resource; nothing is saved.", size="2", color_scheme="gray"),
        rx.text_area(value=RulesState.sample, on_change=RulesState.set_sample, rows="7",
                     id="dry-run-sample",
                     font_family="monospace", width="100%"),
        rx.cond(RulesState.sample_error != "", rx.text(RulesState.sample_error, size="1",
                                                       color_scheme="red",
                                              id="dry-run-error")),
        rx.hstack(
            rx.select(RulesState.directions, value=RulesState.dry_direction,
                      on_change=RulesState.set_dry_direction,
                      size="2"),
            rx.button(rx.icon("flask-conical", size=14), "Dry run", on_click=RulesState.dry_run,
                      id="dry-run"),
        ),
        rx.cond(RulesState.dry_done, rx.vstack(
            rx.cond(RulesState.dry_lines.length() > 0,
                    rx.vstack(rx.foreach(RulesState.dry_lines, _change_line), spacing="1",
                              id="dry-run-changes"),
                    rx.text("No rule changed anything.", size="2", id="dry-run-changes")),
            rx.grid(
                rx.vstack(rx.text("Before", weight="medium"),
                          rx.code_block(RulesState.dry_before, language="json", width="100%"),
                          id="dry-run-before"),
                rx.vstack(rx.text("After", weight="medium"),
                          rx.code_block(RulesState.dry_after, language="json", width="100%"),
                          id="dry-run-after"),
                columns="2", spacing="3", width="100%",
            ),
            width="100%",
        )),
        spacing="2",
        width="100%",
    ))  # fmt: skip


def rules_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Transformation rules", size="3"),
                rx.spacer(),
                admin_only(
                    rx.button(
                        rx.icon("plus", size=14),
                        "Add rule",
                        on_click=RulesState.open_new,
                        id="rule-add",
                        size="2",
                    )
                ),  # fmt: skip
                width="100%",
            ),
            rules_table(),
            operator_only(rx.divider()),  # above the dry run, which viewers are not given
            dry_run_card(),
            rule_dialog(),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )
