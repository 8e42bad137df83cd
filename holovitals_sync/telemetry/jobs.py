"""The trace context in RQ jobs: put in at enqueue, taken up by the worker that runs it.

The context travels in the job's meta (W3C `traceparent`), which RQ keeps across retries,
requeues and dependencies, so a retried job is a second span of the same trace.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from rq import Queue
from rq.job import Job

from . import setup

META_KEY = "otel"
MAX_LINKS = 128  # the SDK's default cap on a span's links
_tracer = trace.get_tracer("holovitals_sync.jobs")
# The RQ job this process is running (log lines carry it; see `logs`).
_running: ContextVar[str | None] = ContextVar("holovitals_rq_job", default=None)
# The requests whose work the next enqueue carries (a group commit of many requests).
_links: ContextVar[tuple[trace.SpanContext, ...]] = ContextVar("holovitals_links", default=())


def origin() -> trace.SpanContext:
    """The span running now (a request, a message), to link the work it hands on to."""
    return trace.get_current_span().get_span_context()


@contextlib.contextmanager
def linked(origins: Iterable[trace.SpanContext]) -> Iterator[None]:
    """Jobs enqueued in this block start traces of their own, linked to `origins`: work
    stored by group commit (EHR notifications, ADT messages) serves many requests at once,
    so it cannot continue any one request's trace."""
    token = _links.set(tuple(o for o in origins if o.is_valid)[:MAX_LINKS])
    try:
        yield
    finally:
        _links.reset(token)


def running_job() -> str | None:
    return _running.get()


class TracedQueue(Queue):
    """An RQ queue whose jobs carry the trace they were enqueued in."""

    def create_job(self, *args: Any, **kwargs: Any) -> Job:
        job = super().create_job(*args, **kwargs)
        carry(job, self.name)
        return job


def carry(job: Job, queue_name: str) -> None:
    """Open the job's "enqueue" span (under the current one, or a new trace when none runs,
    e.g. a scheduled sync) and put its context into the job's meta."""
    if not setup.started():
        return
    attributes = {**_job_attributes(job, queue_name), "messaging.operation.type": "send"}
    with _tracer.start_as_current_span(
        f"enqueue {queue_name}",
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        links=[trace.Link(o) for o in _links.get()],
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    if carrier:
        job.meta[META_KEY] = carrier


@contextlib.contextmanager
def job_span(job: Job, queue_name: str) -> Iterator[trace.Span]:
    """The span of one run of `job` in a worker, under the trace it was enqueued in, after a
    span for the time it waited in the queue."""
    token = _running.set(job.id)
    try:
        if not setup.started():
            yield trace.INVALID_SPAN
            return
        context = propagate.extract(job.meta.get(META_KEY) or {})
        _record_wait(job, queue_name, context)
        attributes = {**_job_attributes(job, queue_name), "messaging.operation.type": "process"}
        with _tracer.start_as_current_span(
            f"run {_function(job)}", context=context, kind=SpanKind.CONSUMER, attributes=attributes
        ) as span:
            yield span
    finally:
        _running.reset(token)


def ended(span: trace.Span, ok: bool, job: Job, queue_name: str, seconds: float) -> None:
    """Mark how the run ended (its error was named by `failed`) and count it in the job
    metrics (`holovitals.job.duration`, by function, queue and outcome)."""
    if ok:
        span.set_status(Status(StatusCode.OK))
    _durations().record(
        seconds,
        {
            "rq.job.function": _function(job),
            "messaging.destination.name": queue_name,
            "outcome": "ok" if ok else "failed",
        },
    )


@functools.cache
def _durations() -> metrics.Histogram:
    return metrics.get_meter("holovitals_sync.jobs").create_histogram(
        "holovitals.job.duration", unit="s", description="One run of an RQ job in a worker."
    )


def failed(reason: str) -> None:
    """Name the current job's failure on its span: the worker's safe text, never the
    exception's message (it may carry an EHR's URL or a patient id)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_status(Status(StatusCode.ERROR, reason))
        span.set_attribute("error.type", reason)


def _record_wait(job: Job, queue_name: str, context: Any) -> None:
    enqueued = job.enqueued_at
    if enqueued is None:
        return
    start = enqueued if enqueued.tzinfo else enqueued.replace(tzinfo=UTC)
    span = _tracer.start_span(
        f"wait in {queue_name}",
        context=context,
        start_time=int(start.timestamp() * 1e9),
        attributes={"messaging.destination.name": queue_name},
    )
    span.end(end_time=int(datetime.now(UTC).timestamp() * 1e9))


def _job_attributes(job: Job, queue_name: str) -> dict[str, Any]:
    return {
        "messaging.system": "rq",
        "messaging.destination.name": queue_name,
        "messaging.message.id": job.id,
        "rq.job.function": _function(job),
        "rq.job.retries_left": job.retries_left if job.retries_left is not None else -1,
    }


def _function(job: Job) -> str:
    try:
        return job.func_name or "?"
    except Exception:  # noqa: BLE001 - a job whose function cannot be read still has a span
        return "?"
