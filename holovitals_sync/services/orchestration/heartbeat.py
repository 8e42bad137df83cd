"""A running job's pulse: its row's `heartbeat_at` is refreshed every few seconds while the
run's process lives, not only when a batch commits.

Why: `reconcile` must tell a run that is lost (its worker died with Redis, its RQ entry is
gone) from one that is merely slow (a page of a slow EHR can take longer than a batch). With
a heartbeat only per batch it had to wait a minute to be sure; with a pulse it knows within
`LOST_AFTER`. The pulse stops with the run, with its process (SIGKILL) and once the row no
longer belongs to this attempt (cancelled, finished, taken over).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa

from ...db import session_scope
from ...models import SyncJob
from ...models.types import utcnow
from .lifecycle import owned

log = logging.getLogger(__name__)

BEAT_SECONDS = 5.0
# Four missed beats: a run is lost when its row has not been touched for this long.
LOST_AFTER = timedelta(seconds=4 * BEAT_SECONDS)


@contextmanager
def beating(job_id: int, attempt: int) -> Iterator[None]:
    """Keep the row's heartbeat fresh while the block runs (in a daemon thread)."""
    stop = threading.Event()
    thread = threading.Thread(
        target=_beat, args=(job_id, attempt, stop), name=f"heartbeat-{job_id}", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=BEAT_SECONDS)


def _beat(job_id: int, attempt: int, stop: threading.Event) -> None:
    while not stop.wait(BEAT_SECONDS):
        try:
            if not touch(job_id, attempt):
                return  # the row moved on: nothing of this run to vouch for
        except Exception as exc:  # noqa: BLE001 - a missed beat is not the run's failure
            log.debug("sync job %s: heartbeat missed (%s)", job_id, type(exc).__name__)


def touch(job_id: int, attempt: int) -> bool:
    """Refresh the heartbeat if the row is still RUNNING this attempt; False otherwise."""
    statement = sa.update(SyncJob).where(*owned(job_id, attempt)).values(heartbeat_at=utcnow())
    with session_scope() as session:
        result = cast("sa.CursorResult[Any]", session.execute(statement))
        return result.rowcount == 1
