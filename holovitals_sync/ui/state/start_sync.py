"""The "Start sync" dialog's state: the form's values, checks per field, the job it starts."""

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
from .jobs import JobsState
from .session import acting, requires

# Pydantic's wording where a person needs a hint instead of a regular expression.
MESSAGES = {
    (
        "resource_type",
        "string_pattern_mismatch",
    ): "Use a FHIR resource type name, such as Observation or MedicationRequest.",
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
        job = orchestration.start_job(
            session,
            request=request,
            requested_by_kind=kind,
            requested_by=principal.username,
            actor=principal.actor,
        )
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
        if not self.connection_id:
            self.errors = {"connection_id": "Choose a connection."}
            return None
        try:
            job_id = await asyncio.to_thread(_start, self._body(), acting())
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
