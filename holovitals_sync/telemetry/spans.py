"""What the product's own code adds to the trace it runs in (no-ops when tracing is off)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import trace

AttributeValue = str | int | float | bool
PREFIX = "holovitals."
_tracer = trace.get_tracer("holovitals_sync")


def _named(attributes: dict[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {PREFIX + key: value for key, value in attributes.items() if value is not None}


def annotate(**attributes: AttributeValue | None) -> None:
    """Ids and counts on the current span (`holovitals.<name>`); never PHI: callers pass
    row ids, resource types, counts and statuses, not record content or patient ids."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(_named(attributes))


@contextlib.contextmanager
def step(name: str, **attributes: AttributeValue | None) -> Iterator[trace.Span]:
    """A child span for one step of the work (a batch stored, a write-back)."""
    with _tracer.start_as_current_span(name, attributes=_named(attributes)) as span:
        yield span
