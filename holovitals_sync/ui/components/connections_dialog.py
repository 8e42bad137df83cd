"""The add/edit connection dialog: the fields the chosen vendor's profile asks for.

The field list comes from the state (built from the adapter profile), so nothing here names a
vendor. Secret inputs are never filled in: the stored value is write-only.
"""

from __future__ import annotations

import reflex as rx

from ..state.connections import ConnectionsState
from ..views.connection_forms import OPTION_LABELS
from .layout import dialog_content


def _vendor_picker() -> rx.Component:
    return rx.vstack(
        rx.text("EHR vendor", size="2", weight="medium"),
        rx.select.root(
            rx.select.trigger(id="field-vendor", width="100%"),
            rx.select.content(
                rx.foreach(
                    ConnectionsState.vendors, lambda v: rx.select.item(v["label"], value=v["value"])
                )
            ),
            value=ConnectionsState.form_vendor,
            on_change=ConnectionsState.set_form_vendor,
            disabled=ConnectionsState.form_id != 0,
        ),
        spacing="1",
        width="100%",
    )


def _option(value: rx.Var) -> rx.Component:
    # Readable names for known values (auth methods); other values show as they are.
    return rx.select.item(rx.match(value, *OPTION_LABELS.items(), value), value=value)


def _input(field: rx.Var) -> rx.Component:
    name = field["name"]
    return rx.match(
        field["kind"],
        (
            "select",
            rx.select.root(
                rx.select.trigger(id=f"field-{name}", width="100%"),
                rx.select.content(rx.foreach(field["options"].split("|"), _option)),
                value=field["value"],
                on_change=lambda value: ConnectionsState.set_form_value(name, value),
            ),
        ),  # fmt: skip
        # Uncontrolled: what was typed goes to the server, nothing stored comes back.
        (
            "secret",
            rx.input(
                type="password",
                id=f"field-{name}",
                auto_complete="new-password",
                width="100%",
                placeholder=rx.cond(field["required"] == "", "leave blank to keep", ""),
                on_change=lambda value: ConnectionsState.set_form_value(name, value),
            ),
        ),  # fmt: skip
        rx.input(
            value=field["value"],
            id=f"field-{name}",
            placeholder=field["placeholder"],
            on_change=lambda value: ConnectionsState.set_form_value(name, value),
            width="100%",
            color_scheme=rx.cond(field["error"] != "", "red", "gray"),
        ),  # fmt: skip
    )


def _field(field: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text(field["label"], size="2", weight="medium"),
            rx.cond(field["required"] == "yes", rx.text("*", color_scheme="red", size="2")),
            spacing="1",
        ),
        _input(field),
        rx.cond(field["help"] != "", rx.text(field["help"], size="1", color_scheme="gray")),
        rx.cond(
            field["error"] != "",
            rx.text(field["error"], size="1", color_scheme="red", id=f"error-{field['name']}"),
        ),
        spacing="1",
        width="100%",
    )


def connection_dialog() -> rx.Component:
    return rx.dialog.root(
        dialog_content(
            rx.cond(ConnectionsState.form_id == 0, "Add connection", "Edit connection"),
            rx.vstack(
                _vendor_picker(),
                rx.foreach(ConnectionsState.form_fields, _field),
                rx.cond(
                    ConnectionsState.form_note != "",
                    rx.callout(ConnectionsState.form_note, icon="key-round", size="1"),
                ),
                spacing="3",
                width="100%",
                padding_y="1em",
            ),
            footer=rx.hstack(
                rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.button(
                    "Save",
                    on_click=ConnectionsState.save_form,
                    loading=ConnectionsState.form_busy,
                    id="connection-save",
                ),
                justify="end",
                spacing="3",
            ),
            description=rx.dialog.description(
                "The fields below are the ones this vendor needs.", size="2", color_scheme="gray"
            ),
            id="connection-dialog",
            max_width="34em",
        ),
        open=ConnectionsState.form_open,
        on_open_change=ConnectionsState.set_form_open,
    )
