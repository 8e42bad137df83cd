"""Prometheus metrics computed at scrape time from the database and the RQ queues.

State (jobs by status, records, open conflicts, webhook deliveries, queue depth) is read
fresh on every scrape, so every backend process reports the same numbers however many
there are and whichever worker did the work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from rq import Queue
from sqlmodel import Session, select

from ..config import QUEUE_FAMILIES, Settings
from ..db import get_engine
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
            try:
                for family in QUEUE_FAMILIES:
                    for name in self.settings.queue_names(family):
                        depth.add_metric([family, name], Queue(name, connection=conn).count)
            except (redis.RedisError, OSError) as exc:
                log.warning("metrics: Redis unreachable (%s)", type(exc).__name__)
            finally:
                conn.close()
        yield depth


def render_metrics(settings: Settings) -> bytes:
    """The Prometheus text exposition of the current state."""
    registry = CollectorRegistry()
    registry.register(StateCollector(settings))  # type: ignore[arg-type]
    return generate_latest(registry)
