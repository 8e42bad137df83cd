"""One connection below the list: test checklist, signing keys and JWKS, schedules."""

from __future__ import annotations

from typing import Any

import reflex as rx

from ..state.connections import ConnectionsState
from ..state.session import SessionState
from ..views.connections import FULL_SYNC_VIA
from .layout import admin_only, operator_only

STEP_LABELS = {
    "discovery": "SMART discovery",
    "token": "Access token",
    "capability_statement": "Metadata (CapabilityStatement)",
    "patient_search": "Sample Patient search",
    "resource_types": "Resource types to sync",
}


def _step(step: rx.Var) -> rx.Component:
    ok = step["ok"] == "yes"
    return rx.hstack(
        rx.cond(
            ok,
            rx.icon("circle-check", color=rx.color("green", 10)),
            rx.icon("circle-x", color=rx.color("red", 10)),
        ),  # fmt: skip
        rx.vstack(
            rx.text(rx.match(step["name"], *STEP_LABELS.items(), step["name"]), weight="medium"),
            rx.text(step["detail"], size="1", color_scheme="gray"),
            spacing="0",
        ),
        align="start",
        class_name=rx.cond(ok, "test-step step-ok", "test-step step-failed"),
        id=f"step-{step['name']}",
    )


def test_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Test connection", size="3"),
                rx.spacer(),
                operator_only(
                    rx.button(
                        rx.icon("plug-zap", size=14),
                        "Test connection",
                        on_click=ConnectionsState.run_test,
                        loading=ConnectionsState.test_running,
                        id="connection-test",
                        size="2",
                    )
                ),  # fmt: skip
                width="100%",
            ),
            rx.cond(
                ConnectionsState.test_steps.length() > 0,
                rx.vstack(
                    rx.foreach(ConnectionsState.test_steps, _step), spacing="2", id="test-steps"
                ),
                rx.text(
                    "Last result: ",
                    ConnectionsState.selected["test"],
                    size="2",
                    color_scheme="gray",
                ),
            ),
            spacing="3",
        ),
        width="100%",
    )


def keys_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Signing key (SMART Backend Services)", size="3"),
                rx.spacer(),
                admin_only(
                    rx.hstack(
                        rx.select(
                            ["RS384", "ES384"],
                            value=ConnectionsState.key_alg,
                            on_change=ConnectionsState.set_key_alg,
                            size="2",
                            id="key-alg",
                        ),
                        rx.button(
                            rx.icon("key-round", size=14),
                            "Generate key pair",
                            on_click=ConnectionsState.generate_key,
                            id="generate-key",
                            size="2",
                        ),
                    )
                ),  # fmt: skip
                width="100%",
            ),
            rx.text("Register this URL (or the JSON below) with the EHR:", size="2"),
            rx.code(ConnectionsState.jwks_link, id="jwks-url"),
            rx.cond(
                ConnectionsState.jwks_json != "",
                rx.code_block(
                    ConnectionsState.jwks_json,
                    language="json",
                    id="jwks-json",
                    width="100%",
                    wrap_long_lines=True,
                ),
                rx.text("No key pair yet.", size="2", color_scheme="gray"),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def _error(name: str) -> rx.Component:
    return rx.cond(
        ConnectionsState.schedule_errors.contains(name),
        rx.text(
            ConnectionsState.schedule_errors[name], size="1", color_scheme="red", id=f"error-{name}"
        ),
    )


FULL_SYNC_HELP = (
    "Bulk Data export suits large populations and vendors that mean it for full syncs; "
    "paged search is faster on a server that pages quickly but exports slowly."
)
TYPES_HELP = (
    "FHIR resource types, separated by commas; Patient is always among them. Syncs and "
    "exports read only these (and so do the scopes asked for, where none are set)."
)
PAGING_HELP = (
    "The _count asked for (blank: the vendor's; a server that honours less is remembered), "
    "and how many resource types one sync pages at once, each counting against the jobs "
    "at once."
)
SWEEP_HELP = (
    "Lists the EHR's ids to find records it deleted without saying so; runs "
    "for active connections that have synced."
)


def _schedule_inputs() -> rx.Component:
    """What an administrator edits."""
    return rx.vstack(
        rx.hstack(
            _text_input(
                "Incremental sync (cron, UTC; blank: none)",
                "schedule",
                ConnectionsState.schedule_expr,
                ConnectionsState.set_schedule_expr,
                placeholder="*/15 * * * *",
                input_id="schedule-cron",
            ),
            _number_input(
                "Jobs at once",
                "concurrency",
                ConnectionsState.concurrency,
                ConnectionsState.set_concurrency,
                (1, 50),
            ),
            spacing="4",
            align="start",
            wrap="wrap",
        ),
        _text_input(
            "Id sweep (cron, UTC; blank: off)",
            "sweep",
            ConnectionsState.sweep_expr,
            ConnectionsState.set_sweep_expr,
            placeholder="30 2 * * *",
            title=SWEEP_HELP,
        ),
        _paging_inputs(),
        rx.vstack(
            rx.text("Full sync reads the EHR by", size="2"),
            rx.select.root(
                rx.select.trigger(id="schedule-full-sync", title=FULL_SYNC_HELP),
                rx.select.content(
                    *(rx.select.item(label, value=value) for value, label in FULL_SYNC_VIA.items())
                ),
                value=ConnectionsState.full_sync_via,
                on_change=ConnectionsState.set_full_sync_via,
            ),
            _error("full_sync_via"),
            spacing="1",
        ),
        _text_input(
            "Resource types to sync (blank: all the EHR offers)",
            "resource_types",
            ConnectionsState.resource_types,
            ConnectionsState.set_resource_types,
            placeholder="Patient, Observation, Condition",
            title=TYPES_HELP,
            width="100%",
        ),
        rx.button("Save schedule", on_click=ConnectionsState.save_schedule, id="schedule-save"),
        spacing="3",
        align="start",
    )


def _learned() -> rx.Component:
    return rx.cond(
        ConnectionsState.page_size_learned != "",
        rx.text(
            "this server honours ",
            ConnectionsState.page_size_learned,
            size="1",
            color_scheme="gray",
            id="schedule-page-size-learned",
        ),
    )


def _capped() -> rx.Component:
    return rx.cond(
        ConnectionsState.streams_capped != "",
        rx.text(
            ConnectionsState.streams_capped,
            size="1",
            color_scheme="amber",
            id="schedule-streams-capped",
        ),
    )


def _labelled_input(
    label: str,
    name: str,
    *extra: rx.Component,
    input_id: str | None = None,
    title: str | None = None,
    box: dict[str, Any] | None = None,
    **props: Any,
) -> rx.Component:
    """A labelled input with its field's error (`name`), id `schedule-<name>` unless
    `input_id` names it (the tests and the read-only view know the cron field by its own).
    `props` go to the input, `box` to the column holding label, input and error."""
    hint = {"title": title} if title else {}
    return rx.vstack(
        rx.text(label, size="2"),
        rx.input(id=input_id or f"schedule-{name.replace('_', '-')}", **props, **hint),
        *extra,
        _error(name),
        spacing="1",
        **(box or {}),
    )


def _text_input(
    label: str,
    name: str,
    value: Any,
    on_change: Any,
    *,
    placeholder: str,
    input_id: str | None = None,
    title: str | None = None,
    width: str | None = None,
) -> rx.Component:
    """A labelled text input (see `_labelled_input`); `width` sizes input and column."""
    size = {"width": width} if width else {}
    return _labelled_input(
        label,
        name,
        input_id=input_id,
        title=title,
        box=size,
        value=value,
        on_change=on_change,
        placeholder=placeholder,
        **size,
    )


def _number_input(
    label: str,
    name: str,
    value: Any,
    on_change: Any,
    bounds: tuple[int, int],
    *extra: rx.Component,
    width: str = "6em",
    title: str | None = None,
) -> rx.Component:
    """A labelled number input within `bounds` (see `_labelled_input`)."""
    low, high = bounds
    return _labelled_input(
        label,
        name,
        *extra,
        title=title,
        value=value,
        on_change=on_change,
        type="number",
        min=low,
        max=high,
        width=width,
    )


def _paging_inputs() -> rx.Component:
    """Page size and parallel streams, for administrators."""
    return rx.hstack(
        _number_input(
            "Page size (blank: the vendor's)",
            "page_size",
            ConnectionsState.page_size,
            ConnectionsState.set_page_size,
            (10, 10_000),
            _learned(),
            width="8em",
            title=PAGING_HELP,
        ),
        _number_input(
            "Types paged at once",
            "streams",
            ConnectionsState.streams,
            ConnectionsState.set_streams,
            (1, 16),
            _capped(),
            title=PAGING_HELP,
        ),
        spacing="4",
        align="start",
        wrap="wrap",
    )


def _paging_values() -> list[rx.Component]:
    return [
        rx.vstack(
            rx.text("Page size", size="2", color_scheme="gray", title=PAGING_HELP),
            rx.text(
                rx.cond(ConnectionsState.page_size != "", ConnectionsState.page_size, "vendor's"),
                size="2",
                weight="medium",
                id="schedule-page-size",
            ),
            _learned(),
            spacing="1",
        ),
        rx.vstack(
            rx.text("Types paged at once", size="2", color_scheme="gray", title=PAGING_HELP),
            rx.text(ConnectionsState.streams, size="2", weight="medium", id="schedule-streams"),
            _capped(),
            spacing="1",
        ),
    ]


def _schedule_values() -> rx.Component:
    """What everyone else sees: the values, with nothing that invites a change."""
    return rx.hstack(
        rx.vstack(
            rx.text("Incremental sync (cron, UTC)", size="2", color_scheme="gray"),
            rx.cond(
                ConnectionsState.schedule_expr != "",
                rx.code(ConnectionsState.schedule_expr, size="2", id="schedule-cron"),
                rx.text("no schedule", size="2", id="schedule-cron"),
            ),
            spacing="1",
        ),
        rx.vstack(
            rx.text("Jobs at once", size="2", color_scheme="gray"),
            rx.text(
                ConnectionsState.concurrency, size="2", weight="medium", id="schedule-concurrency"
            ),
            spacing="1",
        ),
        *_paging_values(),
        rx.vstack(
            rx.text("Full sync by", size="2", color_scheme="gray", title=FULL_SYNC_HELP),
            rx.text(
                rx.match(ConnectionsState.full_sync_via, *FULL_SYNC_VIA.items(), ""),
                size="2",
                weight="medium",
                id="schedule-full-sync",
            ),
            spacing="1",
        ),
        rx.vstack(
            rx.text("Resource types", size="2", color_scheme="gray", title=TYPES_HELP),
            rx.text(
                rx.cond(
                    ConnectionsState.resource_types != "",
                    ConnectionsState.resource_types,
                    "all the EHR offers",
                ),
                size="2",
                weight="medium",
                id="schedule-types",
            ),  # fmt: skip
            spacing="1",
        ),
        rx.vstack(
            rx.text("Id sweep (cron, UTC)", size="2", color_scheme="gray", title=SWEEP_HELP),
            rx.cond(
                ConnectionsState.sweep_expr != "",
                rx.code(ConnectionsState.sweep_expr, size="2", id="schedule-sweep"),
                rx.text("off", size="2", id="schedule-sweep"),
            ),
            spacing="1",
        ),
        spacing="6",
        align="start",
        wrap="wrap",
    )


def schedule_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Schedule and concurrency", size="3"),
            rx.cond(SessionState.is_admin, _schedule_inputs(), _schedule_values()),
            rx.cond(
                ConnectionsState.next_runs.length() > 0,
                rx.vstack(
                    rx.text("Next runs", size="2", weight="medium"),
                    rx.foreach(
                        ConnectionsState.next_runs,
                        lambda at: rx.text(at, size="1", class_name="next-run"),
                    ),
                    spacing="0",
                    id="next-runs",
                ),
            ),
            rx.cond(
                ConnectionsState.next_sweep != "",
                rx.text("Next sweep: ", ConnectionsState.next_sweep, size="1", id="next-sweep"),
            ),
            spacing="3",
        ),
        width="100%",
    )
