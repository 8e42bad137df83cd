"""Custom validation rules of the open connection: the list, the add form and a check run.

Built from the parts it shares with the transformation rules panel (`rule_editor.py`); here
are this list's columns, the add form's fields and the check's issues.
"""

from __future__ import annotations

import reflex as rx

from ..state.connections import ConnectionsState
from ..state.validation_rules import ValidationRulesState
from .layout import admin_only
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

CHECK_LABELS = {"range": "value range", "pattern": "pattern", "fhirpath": "FHIRPath"}


def _row(rule: Row) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rule["name"], class_name="vrule-name"),
        rx.table.cell(rx.badge(rx.match(rule["check"], *CHECK_LABELS.items(), rule["check"]))),
        rx.table.cell(clipped(rule["what"])),
        rx.table.cell(rule["resource_type"]),
        rx.table.cell(rx.badge(rule["severity"], color_scheme=rx.cond(
            rule["severity"] == "error", "red", "amber"))),
        rx.table.cell(rx.cond(rule["enabled"] == "yes", "on", "off"),
                      class_name="vrule-enabled"),
        rx.table.cell(admin_only(list_controls(ValidationRulesState, rule, prefix="vrule"))),
        class_name="vrule-row",
    )  # fmt: skip


def rules_table() -> rx.Component:
    headers = ["Name", "Check", "What", "Type", "Severity", "Enabled", ""]
    return rule_table(ValidationRulesState, headers, _row, ident="vrules-table",
                      empty="No custom rules: only the built-in checks run.",
                      empty_id="vrules-empty")  # fmt: skip


def _field(label: str, name: str, control: rx.Component) -> rx.Component:
    return labelled(label, control, errors=ValidationRulesState.form_errors, name=name,
                    prefix="vrule")  # fmt: skip


def _input(label: str, name: str, placeholder: str = "", width: str = "12em") -> rx.Component:
    return _field(label, name, rx.input(
        value=ValidationRulesState.form_values[name], placeholder=placeholder,
        id=f"vrule-{name}", width=width,
        on_change=lambda value: ValidationRulesState.set_form_value(name, value)))  # fmt: skip


def _select(label: str, name: str, options: rx.Var) -> rx.Component:
    return _field(label, name, rx.select(
        options, value=ValidationRulesState.form_values[name], id=f"vrule-{name}",
        on_change=lambda value: ValidationRulesState.set_form_value(name, value)))  # fmt: skip


def _check_fields() -> rx.Component:
    """The fields of the chosen check only."""
    return rx.match(
        ValidationRulesState.form_values["check"],
        ("pattern", rx.hstack(
            _input("Element path", "path", "identifier[*].value"),
            _input("Regular expression (full match)", "pattern", r"MRN\d{7}", "16em"),
            spacing="3", wrap="wrap")),
        ("fhirpath", _input("FHIRPath (must be true)", "expression",
                            "status = 'final'", "28em")),
        rx.hstack(
            _input("Element path", "path", "valueQuantity.value"),
            _input("Min", "min", "blank: none", "7em"),
            _input("Max", "max", "blank: none", "7em"),
            spacing="3", wrap="wrap"),
    )  # fmt: skip


def add_form() -> rx.Component:
    return rx.cond(ValidationRulesState.form_open, rx.vstack(
        rx.hstack(
            _select("Check", "check", ValidationRulesState.checks),
            _input("Name", "name", "heart rate range"),
            _input("Resource type", "resource_type", "Observation or *", "10em"),
            _select("Severity", "severity", ValidationRulesState.severities),
            spacing="3", wrap="wrap",
        ),
        _check_fields(),
        rx.hstack(
            rx.button("Cancel", variant="soft", color_scheme="gray",
                      on_click=ValidationRulesState.close_form),
            rx.button("Save validation rule", on_click=ValidationRulesState.save_rule,
                      id="vrule-save"),
            spacing="3",
        ),
        spacing="3",
        padding="0.75em",
        border=f"1px solid {rx.color('gray', 5)}",
        border_radius="6px",
        width="100%",
        id="vrule-form",
    ))  # fmt: skip


def _issue(line: Row) -> rx.Component:
    return rx.hstack(
        rx.icon("triangle-alert", size=14, color=rx.cond(
            line["severity"] == "error", rx.color("red", 10), rx.color("amber", 10))),
        rx.text(line["message"], rx.cond(line["path"] != "", rx.text.span(" at ", line["path"])),
                size="2"),
        align="center",
        class_name="vrule-issue",
    )  # fmt: skip


def check_card() -> rx.Component:
    run = rx.button(rx.icon("shield-check", size=14), "Check",
                    on_click=ValidationRulesState.run_check, id="vrule-check-run")  # fmt: skip
    issues = sample_lines(ValidationRulesState, _issue, empty="Every rule passes.",
                          ident="vrule-check-result")  # fmt: skip
    return sample_card(ValidationRulesState, title="Check a sample",
                       note="Runs the enabled rules on a pasted resource; nothing is saved.",
                       rows="6", sample_id="vrule-sample", error_id="vrule-sample-error",
                       run=run, result=issues)  # fmt: skip


def validation_rules_card() -> rx.Component:
    """The panel; it (re)loads whenever the open connection changes.

    The key sits on a wrapper: Reflex puts `on_mount` in the card's own memoized component,
    so the element whose key changes must be above it for the card to mount again.
    """
    card = editor_card(
        "Validation rules",
        add_button("Add validation rule", ValidationRulesState.open_form, "vrule-add"),
        rx.text(
            "Checks of this connection run on every synced resource; errors make a "
            "record invalid (strict mode does not store it), warnings are recorded.",
            size="2",
            color_scheme="gray",
        ),
        add_form(),
        rules_table(),
        sample_divider(),
        check_card(),
        id="validation-rules",
        on_mount=ValidationRulesState.load_for(ConnectionsState.selected_id),
    )
    return rx.box(card, key=ConnectionsState.selected_id, width="100%")
