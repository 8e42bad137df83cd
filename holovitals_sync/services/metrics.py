"""Prometheus metrics computed at scrape time from the database and the RQ queues.

State (jobs by status, records, open conflicts, webhook deliveries, queue depth) is read
fresh on every scrape, so every backend process reports the same numbers however many
there are and whichever worker did the work. FHIR request latency and errors are counted in
Redis by the process that made the request (`record_fhir_requests`) and read the same way.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

import redis
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from rq import Queue
from sqlmodel import Session, select

from ..config import QUEUE_FAMILIES, Settings
from ..db import get_engine
from ..fhir.client import RequestSample, set_request_observer
from ..models import Conflict, ConflictStatus, SyncedRecord, SyncJob, WebhookDelivery

log = logging.getLogger(__name__)


def _grouped(session: Session, column: sa.ColumnElement, *where: sa.ColumnElement):
    query = select(column, sa.func.count()).group_by(column)
    for clause in where:
        query = query.where(clause)
    return session.exec(query).all()


class StateCollector:
    """A custom collector: one set of gauges per scrape."""

    def __init__(self, settings: Settings, engine: sa.Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or get_engine()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._database_metrics()
        yield from self._queue_metrics()

    def _database_metrics(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("holovitals_sync_jobs", "Sync jobs by status", labels=["status"])
        records = GaugeMetricFamily("holovitals_records", "Synced records held", labels=[])
        conflicts = GaugeMetricFamily(
            "holovitals_conflicts_open", "Open conflicts by severity", labels=["severity"]
        )
        deliveries = GaugeMetricFamily(
            "holovitals_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        with Session(self.engine) as session:
            for status, count in _grouped(session, SyncJob.status):
                jobs.add_metric([status.value], count)
            records.add_metric([], session.exec(select(sa.func.count(SyncedRecord.id))).one())
            open_only = Conflict.status == ConflictStatus.OPEN
            for severity, count in _grouped(session, Conflict.severity, open_only):
                conflicts.add_metric([severity.value], count)
            for status, count in _grouped(session, WebhookDelivery.status):
                deliveries.add_metric([status.value], count)
        yield from (jobs, records, conflicts, deliveries)

    def _queue_metrics(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "holovitals_queue_depth", "Jobs waiting per RQ queue", labels=["family", "queue"]
        )
        if self.settings.redis_url:
            conn = redis.Redis.from_url(self.settings.redis_url, socket_timeout=2)
            fhir: list[HistogramMetricFamily | CounterMetricFamily] = []
            try:
                for family in QUEUE_FAMILIES:
                    for name in self.settings.queue_names(family):
                        depth.add_metric([family, name], Queue(name, connection=conn).count)
                fhir = list(fhir_metrics(conn))
            except (redis.RedisError, OSError) as exc:
                log.warning("metrics: Redis unreachable (%s)", type(exc).__name__)
            finally:
                conn.close()
            yield from fhir
        yield depth


def render_metrics(settings: Settings) -> bytes:
    """The Prometheus text exposition of the current state."""
    registry = CollectorRegistry()
    registry.register(StateCollector(settings))  # type: ignore[arg-type]
    return generate_latest(registry)


# -- FHIR request latency and errors -----------------------------------------------------------
# Workers are separate (forked) processes, so like the state above these numbers live outside
# any one process: each FHIR HTTP attempt increments counters in Redis (one pipelined round
# trip) and every scrape reads them back. Labels are bounded: vendor, resource type (see
# `fhir.client.resource_label`) and status class.

FHIR_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FHIR_DURATION_KEY = "holovitals:metrics:fhir:duration"  # "vendor|type|<bucket index>" -> n
FHIR_ERRORS_KEY = "holovitals:metrics:fhir:errors"  # "vendor|type|status class" -> n
_SEP = "|"


def status_class(status: int | None) -> str | None:
    """`4xx`, `5xx`, `network` (no answer), or None for a success."""
    if status is None:
        return "network"
    if status >= 400:
        return f"{status // 100}xx"
    return None


def _bucket(seconds: float) -> int:
    for index, bound in enumerate(FHIR_BUCKETS):
        if seconds <= bound:
            return index
    return len(FHIR_BUCKETS)  # +Inf


class FhirRequestRecorder:
    """The `fhir.client` request observer that counts into Redis (best effort)."""

    def __init__(self, redis_url: str) -> None:
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=1)

    def __call__(self, sample: RequestSample) -> None:
        labels = _SEP.join((sample.vendor, sample.resource_type))
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(FHIR_DURATION_KEY, f"{labels}{_SEP}{_bucket(sample.seconds)}", 1)
        pipe.hincrbyfloat(FHIR_DURATION_KEY, f"{labels}{_SEP}sum", sample.seconds)
        error = status_class(sample.status)
        if error is not None:
            pipe.hincrby(FHIR_ERRORS_KEY, f"{labels}{_SEP}{error}", 1)
        try:
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.debug("FHIR request metrics not recorded: %s", type(exc).__name__)


def record_fhir_requests(settings: Settings) -> None:
    """Count this process's FHIR requests in Redis (no-op without a Redis URL)."""
    if settings.redis_url:
        set_request_observer(FhirRequestRecorder(settings.redis_url))


def _decode(raw: dict[bytes, bytes]) -> Iterator[tuple[str, str, str, float]]:
    for field, value in raw.items():
        parts = field.decode().split(_SEP)
        if len(parts) == 3:
            yield parts[0], parts[1], parts[2], float(value)


def fhir_metrics(conn: redis.Redis) -> Iterator[HistogramMetricFamily | CounterMetricFamily]:
    """The request-duration histogram and the error counter, from the Redis counters."""
    duration = HistogramMetricFamily(
        "holovitals_fhir_request_duration_seconds",
        "FHIR HTTP request duration to the response headers, per attempt",
        labels=["vendor", "resource_type"],
    )
    errors = CounterMetricFamily(
        "holovitals_fhir_request_errors",
        "FHIR HTTP attempts answered 4xx/5xx or not answered (network)",
        labels=["vendor", "resource_type", "status_class"],
    )
    counts: dict[tuple[str, str], list[float]] = {}
    sums: dict[tuple[str, str], float] = {}
    for vendor, rtype, slot, value in _decode(conn.hgetall(FHIR_DURATION_KEY)):
        if slot == "sum":
            sums[(vendor, rtype)] = value
        else:
            counts.setdefault((vendor, rtype), [0.0] * (len(FHIR_BUCKETS) + 1))[int(slot)] = value
    for labels, per_bucket in sorted(counts.items()):
        bounds = [*(str(b) for b in FHIR_BUCKETS), "+Inf"]
        cumulative = list(itertools.accumulate(per_bucket))
        duration.add_metric(
            list(labels),
            list(zip(bounds, cumulative, strict=True)),
            sum_value=sums.get(labels, 0.0),
        )
    for vendor, rtype, klass, value in sorted(_decode(conn.hgetall(FHIR_ERRORS_KEY))):
        errors.add_metric([vendor, rtype, klass], value)
    yield duration
    yield errors
