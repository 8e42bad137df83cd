"""The RQ worker class every queue family runs."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import traceback
from typing import Any

from rq import worker_registration
from rq.exceptions import StopRequested
from rq.job import Job
from rq.job_lifecycle import call_exception_handlers
from rq.queue import Queue
from rq.worker import Worker

from holovitals_sync import telemetry
from holovitals_sync.db import dispose_after_fork
from holovitals_sync.services.orchestration import shutdown

log = logging.getLogger(__name__)

# An idle worker heartbeats every WORKER_TTL - 15 s; `/api/health` counts a worker as live
# while its last heartbeat is younger than LIVE_WITHIN. RQ's default (420 s) would keep a
# killed worker "live" for minutes.
WORKER_TTL = 30
LIVE_WITHIN = WORKER_TTL + 15
# While a job runs, the worker renews the job's execution every JOB_MONITORING_INTERVAL s
# for EXECUTION_GRACE s more. A worker killed with SIGKILL stops renewing, so its job is
# "abandoned" (and retried from its checkpoint) within ~EXECUTION_GRACE + MAINTENANCE_INTERVAL
# instead of RQ's default of 90 s + 10 min.
JOB_MONITORING_INTERVAL = 3
EXECUTION_GRACE = 10
MAINTENANCE_INTERVAL = 10
# Every worker of every family ticks; the first to take this lock evaluates the alerts and
# the others skip until it expires, so alerts are evaluated about once per tick in total.
ALERTS_LOCK = "holovitals:alerts:evaluate-lock"
ALERTS_LOCK_SECONDS = MAINTENANCE_INTERVAL - 2


def _record_fhir_requests() -> None:
    """FHIR request latency and errors of this worker (and its forked work horses) go to
    Redis, where `/api/metrics` reads them."""
    from holovitals_sync.config import get_settings
    from holovitals_sync.services.metrics import record_fhir_requests

    try:
        record_fhir_requests(get_settings())
    except Exception as exc:  # metrics are optional; the worker's work is not
        log.warning("FHIR request metrics off: %s", type(exc).__name__)


def _lower_priority() -> None:
    """Run below the backend (its forked work horses inherit it): a backlog being worked
    must not slow the webhook receiver or the dashboard (HOLOVITALS_WORKER_NICE)."""
    from holovitals_sync.config import get_settings

    wanted = get_settings().worker_nice
    current = os.nice(0)
    if wanted > current:
        os.nice(wanted - current)


def _expected(exc: BaseException | None) -> bool:
    from holovitals_sync.services.platform.failures import is_expected

    return exc is not None and is_expected(exc)


def _safe(exc: BaseException | None) -> str:
    from holovitals_sync.services.platform.failures import safe_error

    return safe_error(exc) if exc is not None else "error"


def _configure_logs() -> None:
    """Log lines with the trace and job ids, in the configured format. RQ adds no handler
    of its own when the root logger has one, so its lines take the same format."""
    from holovitals_sync.config import get_settings
    from holovitals_sync.telemetry import logs

    logs.configure(get_settings().log_format)


def _type_name(exc_type: Any) -> str:
    return getattr(exc_type, "__name__", "error")


class HoloVitalsWorker(Worker):
    """RQ's forking worker, with a short heartbeat and the database pool dropped per job.

    A forked child must not reuse the parent's pooled database connections: two processes
    on one socket corrupt each other's conversations. Sync workers also run the sync
    maintenance (lost jobs, due schedules) with RQ's own registry maintenance; every worker
    may evaluate the alerts (one per tick across all of them, see `ALERTS_LOCK`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["worker_ttl"] = WORKER_TTL  # the rq CLI passes 420: a tick every ~7 min
        # The rq CLI always passes its defaults, so these are set rather than defaulted.
        kwargs["job_monitoring_interval"] = JOB_MONITORING_INTERVAL
        kwargs["maintenance_interval"] = MAINTENANCE_INTERVAL
        super().__init__(*args, **kwargs)
        _configure_logs()
        telemetry.start("worker")  # a worker started without workers.settings
        _lower_priority()
        # The worker's stop request reaches its work horse as SIGUSR1 (`request_stop`): a
        # sync job stops at its next checkpoint and waits queued, instead of holding the stop
        # for the whole run. Set here, so a horse has it from its first instant (fork).
        if threading.current_thread() is threading.main_thread():  # signals: main only
            signal.signal(signal.SIGUSR1, shutdown.request)
        self._alerts_warm = False
        _record_fhir_requests()
        # Imported before the worker registers, so no maintenance tick pauses to import it.
        import holovitals_sync.services.alerts  # noqa: F401

        if self._serves_sync():
            # Imported once in the parent, so each forked work horse starts warm instead of
            # importing the adapters and FHIR client again for every job.
            import workers.jobs  # noqa: F401

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """Log a failed job without the exception's message, which may carry an EHR's URL
        or a patient id (no PHI in logs): an expected failure (the EHR's answer, a setting,
        Redis or the database away) in one line, anything else with its stack."""
        exc_type, exc, tb = exc_info
        try:
            func = job.func_name
        except Exception:  # noqa: BLE001 - a job that cannot be read is still logged
            func = "?"
        telemetry.jobs.failed(_safe(exc) if _expected(exc) else _type_name(exc_type))
        if _expected(exc):
            self.log.warning("job %s (%s) failed: %s", job.id, func, _safe(exc))
        else:
            stack = "".join(traceback.format_tb(tb)).rstrip()
            self.log.error(
                "job %s (%s) failed: %s, at\n%s",
                job.id,
                func,
                _type_name(exc_type),
                stack,
            )
        call_exception_handlers(self._exc_handlers, job, *exc_info)

    def perform_job(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> bool:
        """Run the job in the trace it was enqueued in (when tracing is on), and send the
        spans before the work horse exits (`os._exit` runs no exit hook)."""
        started = time.monotonic()
        with telemetry.jobs.job_span(job, queue.name) as span:
            ok = bool(super().perform_job(job, queue, *args, **kwargs))
            telemetry.jobs.ended(span, ok, job, queue.name, time.monotonic() - started)
        telemetry.flush()
        return ok

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        dispose_after_fork()
        super().main_work_horse(*args, **kwargs)

    def request_stop(self, signum: Any, frame: Any) -> None:
        """Warm shutdown, as RQ does it, and the running job told to stop at a checkpoint
        (jobs of other families are short and simply finish)."""
        horse = self.horse_pid
        if horse:
            with contextlib.suppress(ProcessLookupError):
                os.kill(horse, signal.SIGUSR1)
        super().request_stop(signum, frame)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is None:
            self._ensure_registered()
        super().heartbeat(timeout, pipeline)

    def maintain_heartbeats(self, job: Job, execution: Any) -> None:
        self._ensure_registered()
        super().maintain_heartbeats(job, execution)

    def _ensure_registered(self) -> None:
        """Register again when Redis has forgotten this worker.

        A Redis that restarted without its data (no persistence, a lost append-only file)
        keeps no worker registry; RQ's heartbeat alone would only write `last_heartbeat`, and
        the worker would go on working unseen by /api/health and the dashboard.
        """
        if self.connection.hexists(self.key, "birth"):
            return
        log.warning("worker %s: registration lost (Redis restarted?); registering again", self.name)
        with self.connection.pipeline() as pipe:
            pipe.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
            worker_registration.register(self, pipe)
            pipe.expire(self.key, self.worker_ttl + 60)
            pipe.execute()

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        if job.timeout and job.timeout > 0:
            remaining = job.timeout - working_time
            return int(min(remaining, self.job_monitoring_interval)) + EXECUTION_GRACE
        return self.job_monitoring_interval + EXECUTION_GRACE

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        if self._serves_sync():
            self._sync_maintenance()
        if self._serves_webhooks():
            self._webhook_maintenance()
        if self._serves_conflicts():
            self._conflict_maintenance()
        self._alerts_maintenance()

    def _serves_sync(self) -> bool:
        return any(q.name.startswith("sync.") for q in self.queues)

    def _serves_webhooks(self) -> bool:
        return any(q.name.startswith("webhooks.") for q in self.queues)

    def _serves_conflicts(self) -> bool:
        return any(q.name.startswith("conflicts.") for q in self.queues)

    def _conflict_maintenance(self) -> None:
        from holovitals_sync.db import session_scope
        from holovitals_sync.services.conflicts.writeback import requeue_stranded

        try:
            with session_scope() as session:
                requeue_stranded(session)  # write-backs owed that no RQ job holds
        except StopRequested:  # a stop signal met it: the worker's loop must see it
            raise
        except Exception as exc:  # maintenance must never stop the worker
            log.warning("conflict maintenance failed: %s", type(exc).__name__)

    def _webhook_maintenance(self) -> None:
        from holovitals_sync.db import session_scope
        from holovitals_sync.services.hl7.sweep import requeue_stranded
        from holovitals_sync.services.webhooks.delivery import recover_stalled
        from holovitals_sync.services.webhooks.sweep import requeue_unqueued

        try:
            with session_scope() as session:
                recover_stalled(session)
            with session_scope() as session:
                requeue_unqueued(session)  # inbound events stored but never queued
            with session_scope() as session:
                requeue_stranded(session)  # HL7 messages stored but never queued
        except StopRequested:  # a stop signal met it: the worker's loop must see it
            raise
        except Exception as exc:  # maintenance must never stop the worker
            log.warning("webhook maintenance failed: %s", type(exc).__name__)

    def _sync_maintenance(self) -> None:
        # Imported here: only sync workers need the orchestration services.
        from holovitals_sync.services.orchestration import reconcile, schedules

        try:
            reconcile()
            schedules.tick()
        except StopRequested:  # a stop signal met it: the worker's loop must see it
            raise
        except Exception as exc:  # maintenance must never stop the worker
            log.warning("sync maintenance failed: %s", type(exc).__name__)

    def _alerts_maintenance(self) -> None:
        # Not on the tick at start-up: a starting worker should take its first job at once,
        # and the alerts can wait one tick.
        if not self._alerts_warm:
            self._alerts_warm = True
            return
        try:
            if not self.connection.set(ALERTS_LOCK, self.name, nx=True, ex=ALERTS_LOCK_SECONDS):
                return
            from holovitals_sync.config import get_settings
            from holovitals_sync.db import session_scope
            from holovitals_sync.services.alerts import evaluate

            with session_scope() as session:
                evaluate(session, self.connection, get_settings())
        except StopRequested:  # a stop signal met it: the worker's loop must see it
            raise
        except Exception as exc:  # maintenance must never stop the worker
            log.warning("alert evaluation failed: %s", type(exc).__name__)
