"""A webhooks worker SIGKILLed mid-delivery: after a new pool starts, every delivery reaches
the loopback receiver; none is lost, and a repeated one carries the same event id."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import orjson
import pytest
from sqlmodel import select

from holovitals_sync.config import get_settings
from holovitals_sync.db import session_scope
from holovitals_sync.models import DeliveryStatus, WebhookDelivery
from holovitals_sync.services import audit
from holovitals_sync.services.webhooks import emit
from holovitals_sync.services.webhooks.subscriptions import SubscriptionIn, create
from tests.loopback import serve
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(240)
EVENTS = 6


@dataclass
class Receiver:
    url: str = ""
    hits: list[tuple[str, str]] = field(default_factory=list)  # (header id, body id)
    delay: float = 1.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def event_ids(self) -> set[str]:
        with self.lock:
            return {header for header, _ in self.hits}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            header_id = self.headers.get("X-HoloVitals-Event-Id", "")
            with state.lock:
                state.hits.append((header_id, str(orjson.loads(body).get("id"))))
            time.sleep(state.delay)  # slow: the kill lands while a delivery is in flight
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    with serve(Handler) as state.url:
        yield state


def deliveries() -> list[WebhookDelivery]:
    with session_scope() as session:
        return list(session.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_deliveries_survive_a_sigkilled_webhooks_worker(fault_env, pools, receiver, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    get_settings.cache_clear()
    with session_scope() as session:
        create(
            session,
            data=SubscriptionIn(
                name="receiver",
                url=receiver.url,
                event_types=["patient.updated"],
                backoff_seconds=[1],
                max_retries=3,
                timeout_seconds=5,
            ),
            actor=audit.Actor.system("tests"),
        )
    first = pools.start("webhooks")
    with session_scope() as session:
        for n in range(EVENTS):
            emit(
                session,
                "patient.updated",
                {"connection_id": None, "resource_type": "Patient", "resource_id": f"pt-{n:05d}"},
            )
    wait_for(lambda: len(receiver.event_ids()) >= 2, timeout=30)
    pools.kill(first)  # one delivery is mid-request, the rest wait in the queue

    pools.start("webhooks")
    # The delivery in flight is put back once its attempt has outlived the RQ job timeout
    # (5 s + 30 s) plus a margin (delivery.STALL_GRACE_SECONDS), at a maintenance tick.
    wait_for(
        lambda: all(d.status is DeliveryStatus.DELIVERED for d in deliveries()),
        timeout=120,
        interval=0.5,
    )
    rows = deliveries()
    assert len(rows) == EVENTS
    assert receiver.event_ids() == {d.event_id for d in rows}  # none lost
    # A delivery repeated after the kill carries its own event id again, never a new one.
    assert all(header == body for header, body in receiver.hits)
    assert len(receiver.hits) <= EVENTS + 1
