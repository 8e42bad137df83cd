"""What the product's own code adds to the trace it runs in (no-ops when tracing is off).

Our spans never record an exception's message (it may carry a URL or a patient id): a
failed step's status names the exception's type only (`export` makes sure of the rest).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

AttributeValue = str | int | float | bool
PREFIX = "holovitals."
_tracer = trace.get_tracer("holovitals_sync")


def _named(attributes: dict[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {PREFIX + key: value for key, value in attributes.items() if value is not None}


def recording() -> bool:
    """Whether the current span records: compute an attribute only when it will be kept."""
    return trace.get_current_span().is_recording()


def annotate(**attributes: AttributeValue | None) -> None:
    """Ids and counts on the current span (`holovitals.<name>`); never PHI: callers pass
    row ids, resource types, counts and statuses, not record content or patient ids."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(_named(attributes))


@contextlib.contextmanager
def _failing_by_type(span: trace.Span) -> Iterator[None]:
    try:
        yield
    except (StopAsyncIteration, StopIteration, GeneratorExit):
        raise  # a generator's end, not a failure
    except BaseException as exc:
        if span.is_recording():
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise


@contextlib.contextmanager
def step(name: str, **attributes: AttributeValue | None) -> Iterator[trace.Span]:
    """A child span for one step of the work (a batch stored, a write-back)."""
    with (
        _tracer.start_as_current_span(
            name,
            attributes=_named(attributes),
            record_exception=False,
            set_status_on_exception=False,
        ) as span,
        _failing_by_type(span),
    ):
        yield span


def entry(name: str, **attributes: AttributeValue | None) -> trace.Span:
    """A span where work enters (a click in the dashboard), started and not yet current:
    the caller runs each step of the work `within` it, then ends it."""
    return _tracer.start_span(name, kind=SpanKind.SERVER, attributes=_named(attributes))


@contextlib.contextmanager
def within(span: trace.Span) -> Iterator[None]:
    """Run one step (an await) as part of `span`, which stays open afterwards."""
    with (
        trace.use_span(span, record_exception=False, set_status_on_exception=False),
        _failing_by_type(span),
    ):
        yield
