"""The "Start sync" dialog: connection, type, direction, scope and priority, checked per field."""

from __future__ import annotations

import reflex as rx

from ...models import Direction, JobType, Priority
from ..state.jobs import JobsState
from ..state.start_sync import StartSyncState
from .layout import dialog_content


def _field(label: str, control: rx.Component, name: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        control,
        rx.cond(StartSyncState.errors.contains(name),
                rx.text(StartSyncState.errors[name], size="1", color_scheme="red",
                        id=f"start-error-{name}")),
        spacing="1", width="100%",
    )  # fmt: skip


def _choice(name: str, values: list[str], value: rx.Var[str]) -> rx.Component:
    return rx.select(
        values,
        value=value,
        on_change=lambda v: StartSyncState.set_field(name, v),
        id=f"start-{name}",
        width="100%",
    )


def _connection_select() -> rx.Component:
    return rx.select.root(
        rx.select.trigger(placeholder="Choose a connection", id="start-connection_id",
                          width="100%"),
        rx.select.content(rx.foreach(JobsState.connections,
                                     lambda o: rx.select.item(o.label, value=o.value))),
        value=StartSyncState.connection_id,
        on_change=lambda v: StartSyncState.set_field("connection_id", v),
    )  # fmt: skip


def _text(name: str, value: rx.Var[str], placeholder: str) -> rx.Component:
    return rx.input(
        value=value,
        placeholder=placeholder,
        id=f"start-{name}",
        width="100%",
        on_change=lambda v: StartSyncState.set_field(name, v),
    )


def start_sync_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(rx.button(rx.icon("play", size=14), "Start sync", id="start-sync")),
        dialog_content(
            "Start a sync",
            rx.vstack(
                _field("Connection", _connection_select(), "connection_id"),
                _field("Type", _choice("job_type", [t.value for t in JobType],
                                       StartSyncState.job_type), "job_type"),
                rx.cond(StartSyncState.job_type == JobType.SWEEP.value,
                        rx.text("Ids only: finds the records the EHR deleted without saying so "
                                "and keeps them as tombstones.", size="1", color_scheme="gray",
                                id="start-sweep-help")),
                rx.cond(StartSyncState.job_type == JobType.PATIENT.value,
                        _field("Patient id (the EHR's)", _text("patient_id",
                               StartSyncState.patient_id, "e.g. 12724066"), "patient_id")),
                rx.cond(StartSyncState.job_type == JobType.RESOURCE.value,
                        _field("Resource type", _text("resource_type",
                               StartSyncState.resource_type, "e.g. Observation"),
                               "resource_type")),
                _field("Direction", _choice("direction", [d.value for d in Direction],
                                            StartSyncState.direction), "direction"),
                _field("Priority", _choice("priority", [p.value for p in Priority],
                                           StartSyncState.priority), "priority"),
                spacing="3",
            ),
            footer=rx.flex(
                rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.button("Start", on_click=StartSyncState.submit, id="start-submit"),
                justify="end", spacing="2",
            ),
            max_width="28em", id="start-sync-dialog",
        ),
        open=StartSyncState.open,
        on_open_change=StartSyncState.open_change,
    )  # fmt: skip
