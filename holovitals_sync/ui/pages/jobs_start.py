"""The "Start sync" dialog: connection, type, direction, scope and priority, checked per field."""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx
from pydantic import ValidationError

from ...db import session_scope
from ...models import Direction, JobType, Priority, RequesterKind, Role
from ...services import labels, orchestration
from ...services.auth import Principal
from ...services.platform.redis import QueueUnavailable
from ..components.layout import dialog_content
from ..state.jobs import JobsState
from ..state.session import principal_for, requires

# Pydantic's wording where a person needs a hint instead of a regular expression.
MESSAGES = {
    ("resource_type", "string_pattern_mismatch"):
        "Use a FHIR resource type name, such as Observation or MedicationRequest.",
    ("patient_id", "string_too_long"): "A patient id has at most 200 characters.",
    # The request's own checks name the API field; the form has a labelled box for it.
    ("patient_id", "value_error"): "Enter the patient's id at the EHR.",
    ("resource_type", "value_error"): "Enter a FHIR resource type, such as Observation.",
}
FIELDS = ("connection_id", "job_type", "direction", "priority", "patient_id", "resource_type")


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors as one message per form field (model-level ones on the scope)."""
    out: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        name = loc[0] if loc and loc[0] in FIELDS else _scope_field(error["msg"])
        out.setdefault(name, MESSAGES.get((name, error["type"]), labels.field_message(error)))
    return out


def _scope_field(message: str) -> str:
    return "resource_type" if "resource_type" in message else "patient_id"


def _start(body: dict[str, Any], principal: Principal) -> int:
    request = orchestration.JobRequest.model_validate(body)
    kind = RequesterKind.USER
    with session_scope() as session:
        job = orchestration.start_job(session, request=request, requested_by_kind=kind,
                                      requested_by=principal.username, actor=principal.actor)
        return int(job.id)


class StartSyncState(rx.State):
    """The form's values and its per-field messages."""

    open: bool = False
    connection_id: str = ""
    job_type: str = JobType.INCREMENTAL.value
    direction: str = Direction.INBOUND.value
    priority: str = Priority.DEFAULT.value
    patient_id: str = ""
    resource_type: str = ""
    errors: dict[str, str] = {}

    @rx.event
    def open_change(self, value: bool) -> None:
        self.open, self.errors = value, {}

    @rx.event
    def set_field(self, name: str, value: str) -> None:
        if name in FIELDS:
            setattr(self, name, value)
            self.errors = {k: v for k, v in self.errors.items() if k != name}

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"connection_id": self.connection_id or None,
                                "job_type": self.job_type, "direction": self.direction,
                                "priority": self.priority}  # fmt: skip
        # Only the scope the chosen type needs is sent; a stale value in the other is ignored.
        if self.job_type == JobType.PATIENT.value:
            body["patient_id"] = self.patient_id.strip() or None
        if self.job_type == JobType.RESOURCE.value:
            body["resource_type"] = self.resource_type.strip() or None
        return body

    @rx.event
    @requires(Role.OPERATOR)
    async def submit(self) -> Any:
        principal, refusal = await principal_for(self, Role.OPERATOR)
        if principal is None:
            return refusal
        if not self.connection_id:
            self.errors = {"connection_id": "Choose a connection."}
            return None
        try:
            job_id = await asyncio.to_thread(_start, self._body(), principal)
        except ValidationError as exc:
            self.errors = field_errors(exc)
            return None
        except orchestration.ConnectionNotFound:
            self.errors = {"connection_id": "That connection no longer exists."}
            return None
        except orchestration.InvalidJob as exc:
            self.errors = {exc.field: str(exc)}
            return None
        except QueueUnavailable:
            return rx.toast.error("The job queue is not reachable; try again shortly.")
        self.open, self.errors, self.patient_id, self.resource_type = False, {}, "", ""
        return [JobsState.load, rx.toast.success(f"Sync job {job_id} queued.")]


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
    return rx.select(values, value=value, on_change=lambda v: StartSyncState.set_field(name, v),
                     id=f"start-{name}", width="100%")


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
    return rx.input(value=value, placeholder=placeholder, id=f"start-{name}", width="100%",
                    on_change=lambda v: StartSyncState.set_field(name, v))


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
