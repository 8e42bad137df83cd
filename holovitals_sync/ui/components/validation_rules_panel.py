"""Custom validation rules of the open connection: the list, the add form and a check run."""

from __future__ import annotations

import reflex as rx

from ..state.connections import ConnectionsState
from ..state.validation_rules import ValidationRulesState
from .layout import admin_only, operator_only

CHECK_LABELS = {"range": "value range", "pattern": "pattern", "fhirpath": "FHIRPath"}


def _actions(rule: rx.Var) -> rx.Component:
    rid = rule["id"]
    return admin_only(rx.hstack(
        rx.switch(checked=rule["enabled"] == "yes", size="1", class_name="vrule-toggle",
                  on_change=lambda on: ValidationRulesState.toggle(rid, on)),
        rx.icon_button(rx.icon("arrow-up", size=14), size="1", variant="ghost",
                       on_click=ValidationRulesState.move(rid, "up"), aria_label="Move up"),
        rx.icon_button(rx.icon("arrow-down", size=14), size="1", variant="ghost",
                       on_click=ValidationRulesState.move(rid, "down"), aria_label="Move down"),
        rx.icon_button(rx.icon("trash-2", size=14), size="1", variant="ghost",
                       color_scheme="red", on_click=ValidationRulesState.delete(rid),
                       aria_label="Delete",
                       class_name="vrule-delete"),
        spacing="2",
        align="center",
    ))  # fmt: skip


def _row(rule: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rule["name"], class_name="vrule-name"),
        rx.table.cell(rx.badge(rx.match(rule["check"], *CHECK_LABELS.items(), rule["check"]))),
        rx.table.cell(rx.text(rule["what"], size="1", font_family="monospace",
                              max_width="22em", overflow="hidden", text_overflow="ellipsis",
                              white_space="nowrap", title=rule["what"])),
        rx.table.cell(rule["resource_type"]),
        rx.table.cell(rx.badge(rule["severity"], color_scheme=rx.cond(
            rule["severity"] == "error", "red", "amber"))),
        rx.table.cell(rx.cond(rule["enabled"] == "yes", "on", "off"),
                      class_name="vrule-enabled"),
        rx.table.cell(_actions(rule)),
        class_name="vrule-row",
    )  # fmt: skip


def rules_table() -> rx.Component:
    headers = ["Name", "Check", "What", "Type", "Severity", "Enabled", ""]
    return rx.cond(
        ValidationRulesState.rules.length() > 0,
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
            rx.table.body(rx.foreach(ValidationRulesState.rules, _row)),
            width="100%",
            size="1",
            id="vrules-table",
        ),
        rx.text(
            "No custom rules: only the built-in checks run.",
            size="2",
            color_scheme="gray",
            id="vrules-empty",
        ),  # fmt: skip
    )


def _field(label: str, name: str, control: rx.Component) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        control,
        rx.cond(
            ValidationRulesState.form_errors.contains(name),
            rx.text(
                ValidationRulesState.form_errors[name],
                size="1",
                color_scheme="red",
                id=f"vrule-error-{name}",
            ),
        ),  # fmt: skip
        spacing="1",
    )


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


def _issue(line: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.icon("triangle-alert", size=14, color=rx.cond(
            line["severity"] == "error", rx.color("red", 10), rx.color("amber", 10))),
        rx.text(line["message"], rx.cond(line["path"] != "", rx.text.span(" at ", line["path"])),
                size="2"),
        align="center",
        class_name="vrule-issue",
    )  # fmt: skip


def check_card() -> rx.Component:
    return operator_only(rx.vstack(
        rx.heading("Check a sample", size="3"),
        rx.text("Runs the enabled rules on a pasted resource; nothing is saved.", size="2",
                color_scheme="gray"),
        rx.text_area(value=ValidationRulesState.sample, on_change=ValidationRulesState.set_sample,
                     rows="6", id="vrule-sample",
                     font_family="monospace", width="100%"),
        rx.cond(ValidationRulesState.sample_error != "", rx.text(ValidationRulesState.sample_error,
                                                                 size="1", color_scheme="red",
                                              id="vrule-sample-error")),
        rx.button(rx.icon("shield-check", size=14), "Check",
                  on_click=ValidationRulesState.run_check,
                  id="vrule-check-run"),
        rx.cond(ValidationRulesState.check_done, rx.cond(
            ValidationRulesState.check_lines.length() > 0,
            rx.vstack(rx.foreach(ValidationRulesState.check_lines, _issue), spacing="1",
                      id="vrule-check-result"),
            rx.text("Every rule passes.", size="2", id="vrule-check-result"))),
        spacing="2",
        width="100%",
    ))  # fmt: skip


def validation_rules_card() -> rx.Component:
    """The panel; it (re)loads whenever the open connection changes.

    The key sits on a wrapper: Reflex puts `on_mount` in the card's own memoized component,
    so the element whose key changes must be above it for the card to mount again.
    """
    card = rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Validation rules", size="3"),
                rx.spacer(),
                admin_only(
                    rx.button(
                        rx.icon("plus", size=14),
                        "Add validation rule",
                        on_click=ValidationRulesState.open_form,
                        id="vrule-add",
                        size="2",
                    )
                ),
                width="100%",
            ),
            rx.text(
                "Checks of this connection run on every synced resource; errors make a "
                "record invalid (strict mode does not store it), warnings are recorded.",
                size="2",
                color_scheme="gray",
            ),
            add_form(),
            rules_table(),
            operator_only(rx.divider()),  # above the check, which viewers are not given
            check_card(),
            spacing="3",
            width="100%",
        ),
        width="100%",
        id="validation-rules",
        on_mount=ValidationRulesState.load_for(ConnectionsState.selected_id),
    )
    return rx.box(card, key=ConnectionsState.selected_id, width="100%")  # fmt: skip
