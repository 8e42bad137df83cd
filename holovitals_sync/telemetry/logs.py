"""Log lines that carry the trace and RQ job ids, as text or as JSON lines.

`HOLOVITALS_LOG_FORMAT=json` writes one JSON object per line (time, level, logger,
message, trace_id, span_id, job_id) for log shippers; text keeps the familiar line and adds
`[trace=... job=...]` when there is one to name.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson
from opentelemetry import trace

from .jobs import running_job

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s"


class TraceIds(logging.Filter):
    """Adds `trace_id`, `span_id`, `job_id` (None when absent) and `ids` (their text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        trace_id = format(context.trace_id, "032x") if context.is_valid else None
        job_id = running_job()
        record.trace_id = trace_id
        record.span_id = format(context.span_id, "016x") if context.is_valid else None
        record.job_id = job_id
        named = [
            f"{name}={value}" for name, value in (("trace", trace_id), ("job", job_id)) if value
        ]
        record.ids = f" [{' '.join(named)}]" if named else ""
        return True


class JsonLines(logging.Formatter):
    """One JSON object per record; a stack, if any, as a field of it."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("trace_id", "span_id", "job_id"):
            if value := getattr(record, key, None):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def formatter(log_format: str) -> logging.Formatter:
    return JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(log_format: str, level: str | None = None) -> None:
    """Give the root logger one stderr handler with the ids and the chosen format.

    `level` sets the root logger's level (None keeps it: a worker keeps Python's WARNING for
    the product's loggers while RQ sets its own at the level it was started with).
    """
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(formatter(log_format))
        if not any(isinstance(f, TraceIds) for f in handler.filters):
            handler.addFilter(TraceIds())
    if level is not None:
        root.setLevel(level)
