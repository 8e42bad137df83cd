"""Real RQ workers evaluate alerts in their maintenance tick and deliver `alert.raised`."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlmodel import Session, select

from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import Alert, WebhookDelivery
from tests.factories import make_subscription
from tests.integration.webhooks.conftest import QUEUES, RQ, Workers, receiver  # noqa: F401
from tests.waiting import wait_for


class TickingWorkers(Workers):
    """`rq worker` passes its own --worker-ttl (420 s) unless told, and RQ only runs the
    maintenance between two dequeue timeouts (ttl - 15 s); `rq worker-pool`, which `up` and
    production use, keeps the worker class's 30 s. Pass that here too."""

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            argv = [
                RQ,
                "worker",
                "-c",
                "workers.settings",
                "-w",
                "workers.worker.HoloVitalsWorker",
                "--worker-ttl",
                "30",
                *QUEUES,
            ]
            with open(self.log_dir / f"worker-{len(self.procs)}.log", "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        argv,
                        env=dict(os.environ),
                        start_new_session=True,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )


@pytest.fixture
def workers(alert_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workers]:
    monkeypatch.setenv("HOLOVITALS_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    pool = TickingWorkers(tmp_path)
    yield pool
    pool.stop_all()


def _verify(received, secret: str = "whsec_factory") -> dict:
    """The subscriber recipe from docs/webhooks.md: HMAC of "{t}." + body."""
    parts = dict(p.split("=", 1) for p in received.headers["x-holovitals-signature"].split(","))
    signed = f"{parts['t']}.".encode() + received.body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"])
    return orjson.loads(received.body)


def _alerts() -> list[Alert]:
    with Session(get_engine()) as session:
        return list(session.exec(select(Alert)))


def test_workers_raise_once_and_deliver(workers, receiver):  # noqa: F811 (fixture)
    with session_scope() as session:
        make_subscription(session, url=receiver.url, event_types=["alert.raised"])
        disabled = make_subscription(session, active=False, failure_streak=4).id
    workers.start(2)  # both tick; the lock lets one evaluate per tick
    wait_for(lambda: receiver.requests, timeout=60)
    body = _verify(receiver.requests[0])
    assert body["type"] == "alert.raised"
    assert body["data"]["subscription_id"] == disabled
    # A later tick finds the condition again: counted on the same row, no second event.
    wait_for(lambda: _alerts()[0].occurrences >= 2, timeout=45, interval=0.5)
    with Session(get_engine()) as session:
        (alert,) = session.exec(select(Alert)).all()
        deliveries = session.exec(select(WebhookDelivery)).all()
    assert body["data"]["alert_id"] == alert.id
    assert [d.event_type for d in deliveries] == ["alert.raised"]
    assert len(receiver.requests) == 1
    assert "alert evaluation failed" not in workers.logs()
