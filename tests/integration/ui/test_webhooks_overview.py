"""The Webhooks tab's read side and its "send test event", on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import Session

from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import (
    DeliveryStatus,
    InboundEvent,
    InboundStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from holovitals_sync.services.audit import Actor
from holovitals_sync.services.webhooks import rejections
from holovitals_sync.services.webhooks.probe import excerpt, send_test_event
from holovitals_sync.services.webhooks.subscriptions import SubscriptionIn
from holovitals_sync.ui.views import webhooks as wh
from tests.factories import make_connection, make_delivery, make_subscription

OPERATOR = Actor.system("operator-test")


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    migrations.upgrade(database_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    monkeypatch.setenv("HOLOVITALS_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield database_url
    get_engine().dispose()


class _Receiver(BaseHTTPRequestHandler):
    answer = (202, b'{"received": true}')
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen.append(dict(self.headers))
        status, body = type(self).answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def _named(session: Session, name: str, **fields: object) -> int:
    sub = make_subscription(session, **fields)
    sub.name = name
    session.add(sub)
    session.flush()
    return sub.id


def _delivery(session: Session, sub_id: int, status: DeliveryStatus, code: int) -> None:
    row = make_delivery(session, sub_id, response_status=code)
    row.status = status
    session.add(row)
    session.flush()


def _subs() -> tuple[int, int, int]:
    with session_scope() as session:
        healthy = _named(session, "healthy")
        broken = _named(session, "broken", active=False, failure_streak=7)
        paused = _named(session, "paused", active=False)
        _delivery(session, healthy, DeliveryStatus.DELIVERED, 200)
        _delivery(session, healthy, DeliveryStatus.RETRYING, 503)
        _delivery(session, broken, DeliveryStatus.FAILED, 500)
        probe = make_delivery(session, healthy, response_status=200)  # a test event: no health
        probe.event_type = "webhook.test"
        session.add(probe)
    return healthy, broken, paused


def test_subscriptions_page_shows_health_and_pages_by_cursor(db: str) -> None:
    healthy, broken, paused = _subs()
    with session_scope() as session:
        first = wh.subscriptions_page(session, limit=2)
        second = wh.subscriptions_page(session, after_id=first.next_cursor, limit=2)
    assert [r["id"] for r in first.rows] == [str(paused), str(broken)]  # newest first
    assert first.next_cursor == broken
    assert [r["id"] for r in second.rows] == [str(healthy)] and second.next_cursor is None
    rows = {r["name"]: r for r in first.rows + second.rows}
    assert [rows[n]["health"] for n in ("healthy", "broken", "paused")] == [
        "active",
        "auto-disabled",
        "disabled",
    ]
    assert (rows["healthy"]["last_status"], rows["healthy"]["last_code"]) == ("retrying", "503")
    assert rows["broken"]["failure_streak"] == "7" and rows["paused"]["last_status"] == "—"
    assert all("secret" not in key for row in rows.values() for key in row)


def test_delivery_log_filters_by_subscription_and_status(db: str) -> None:
    healthy, broken, _ = _subs()
    with session_scope() as session:
        mine = wh.deliveries_page(session, subscription_id=healthy, limit=1)
        rest = wh.deliveries_page(session, subscription_id=healthy, after_id=mine.next_cursor)
        failed = wh.deliveries_page(session, status=DeliveryStatus.FAILED)
        none = wh.deliveries_page(session, subscription_id=broken, status=DeliveryStatus.DELIVERED)
    assert [r["event_type"] for r in mine.rows] == ["webhook.test"]  # the log shows probes
    assert [r["status"] for r in rest.rows] == ["retrying", "delivered"]
    assert rest.next_cursor is None and mine.rows[0]["subscription"] == "healthy"
    assert [(r["subscription_id"], r["code"]) for r in failed.rows] == [(str(broken), "500")]
    assert none.rows == []


def test_inbound_rows_count_per_connection_with_rejection_reasons(db: str) -> None:
    with session_scope() as session:
        quiet = make_connection(session, "Quiet Clinic").id
        busy = make_connection(session, "Busy Hospital").id
        for n in range(3):
            session.add(
                InboundEvent(connection_id=busy, event_key=f"k{n}", status=InboundStatus.PROCESSED)
            )
    with session_scope() as session:  # refusals are counted, not stored one row each
        for status, reason in [(InboundStatus.REJECTED, "bad signature")] * 2 + [
            (InboundStatus.DUPLICATE, "replay")
        ]:
            rejections.count(session, connection_id=busy, reason=reason, status=status)
    with session_scope() as session:
        rows = {r["connection"]: r for r in wh.inbound_rows(session)}
    assert quiet and rows["Quiet Clinic"]["received"] == "0"
    row = rows["Busy Hospital"]
    assert (row["received"], row["processed"], row["rejected"], row["duplicates"]) == (
        "6",
        "3",
        "2",
        "1",
    )
    assert row["rejections"] == "bad signature: 2, replay: 1"


def test_field_errors_name_the_field_with_the_services_message() -> None:
    with pytest.raises(Exception) as caught:
        SubscriptionIn.model_validate(
            {"name": "x", "url": "ftp://nope", "event_types": [], "max_retries": "many"}
        )
    errors = wh.field_errors(caught.value)
    assert set(errors) == {"url", "event_types", "max_retries"}
    # Words a person acts on, not pydantic's ("String should match pattern '^https?://'").
    assert errors["event_types"] == "Choose at least one event type"
    assert errors["url"] == "Enter a URL starting with http:// or https://"
    assert errors["max_retries"] == "Enter a whole number"


def test_send_test_event_reports_the_receivers_answer(db: str, receiver) -> None:
    url, handler = receiver
    handler.answer = (202, b'{"received": true, "by": "ward-7"}')
    with session_scope() as session:
        sub = make_subscription(session, url=url)
        result = send_test_event(session, sub=sub, actor=OPERATOR)
    assert (result.status, result.ok, result.error) == (202, True, None)
    assert result.body_excerpt == '{"received": true, "by": "ward-7"}'
    assert handler.seen[0]["X-HoloVitals-Event-Type"] == "webhook.test"
    assert handler.seen[0]["X-HoloVitals-Signature"].startswith("t=")
    with session_scope() as session:
        delivery = session.get(WebhookDelivery, result.delivery_id)
        assert delivery.status is DeliveryStatus.DELIVERED and delivery.response_status == 202


def test_a_failing_test_event_is_reported_but_not_counted_against_health(db: str, receiver) -> None:
    url, handler = receiver
    handler.answer = (500, b"upstream \x00exploded " + b"x" * 400)
    with session_scope() as session:
        sub_id = make_subscription(session, url=url).id
        sub = session.get(WebhookSubscription, sub_id)
        result = send_test_event(session, sub=sub, actor=OPERATOR)
    assert (result.status, result.ok, result.error) == (500, False, "HTTP 500")
    assert result.body_excerpt.startswith("upstream ?exploded") and result.body_excerpt[-1] == "…"
    with session_scope() as session:
        sub = session.get(WebhookSubscription, sub_id)
        assert sub.failure_streak == 0 and sub.active


def test_a_refused_target_is_reported_without_sending(db: str, monkeypatch) -> None:
    monkeypatch.setenv("HOLOVITALS_WEBHOOK_ALLOW_HOSTS", "")
    get_settings.cache_clear()
    with session_scope() as session:
        sub = make_subscription(session, url="http://127.0.0.1:9/hook")
        result = send_test_event(session, sub=sub, actor=OPERATOR)
    assert (result.status, result.error) == (None, "target refused")
    assert "HOLOVITALS_WEBHOOK_ALLOW_HOSTS" in result.body_excerpt


def test_excerpt_keeps_short_text_and_cuts_long_text() -> None:
    assert excerpt("ok\n") == "ok\n"
    assert excerpt("a" * 10, limit=4) == "aaaa…"
