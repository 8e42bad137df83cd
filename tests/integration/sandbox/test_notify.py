"""Signed notifications reach a tiny local HTTP receiver and verify."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from holovitals_sync.sandbox.notify import STATUS_PROFILE, send_notification
from holovitals_sync.sandbox.server import SandboxServer

SECRET = "whsec-test"


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list]]:
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    server.shutdown()
    server.server_close()


def _hmac(message: bytes) -> str:
    return hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()


def _params(bundle: dict) -> dict:
    return {p["name"]: p for p in bundle["entry"][0]["resource"]["parameter"]}


def test_subscription_notification_full_resource(sandbox: SandboxServer, receiver) -> None:
    url, received = receiver
    answer = sandbox.notify(
        url,
        SECRET,
        kind="event-notification",
        payload="full-resource",
        resource="Patient/pt-00001",
        signature_style="all",
    )
    assert answer == {"status": 204, "events_since_start": 1}
    headers, body = received[0]
    t, v1 = (part.split("=", 1)[1] for part in headers["x-holovitals-signature"].split(","))
    assert hmac.compare_digest(v1, _hmac(f"{t}.".encode() + body))
    assert headers["x-hub-signature"] == f"sha256={_hmac(body)}"
    assert headers["x-signature"] == _hmac(body)
    bundle = orjson.loads(body)
    assert bundle["type"] == "history"
    status = bundle["entry"][0]["resource"]
    assert status["resourceType"] == "Parameters" and status["meta"]["profile"] == [STATUS_PROFILE]
    params = _params(bundle)
    assert params["type"]["valueCode"] == "event-notification"
    assert params["events-since-subscription-start"]["valueString"] == "1"
    parts = {p["name"]: p for p in params["notification-event"]["part"]}
    assert parts["focus"]["valueReference"]["reference"] == "Patient/pt-00001"
    assert bundle["entry"][1]["resource"]["id"] == "pt-00001"


def test_handshake_id_only_and_vendor_event(sandbox: SandboxServer, receiver) -> None:
    url, received = receiver
    sandbox.notify(url, SECRET, kind="handshake", signature_style="hub")
    assert _params(orjson.loads(received[0][1]))["type"]["valueCode"] == "handshake"
    assert "x-holovitals-signature" not in received[0][0]
    second = sandbox.notify(url, SECRET, payload="id-only", resource="Observation/obs-00002-003")
    assert second["events_since_start"] == 1
    idonly = orjson.loads(received[1][1])
    gap = sandbox.notify(url, SECRET, resource="Patient/pt-00001", events_since_start=5)
    assert (
        _params(orjson.loads(received[-1][1]))["events-since-subscription-start"]["valueString"]
        == "5"
        and gap["status"] == 204
    )
    assert "resource" not in idonly["entry"][1]
    assert idonly["entry"][1]["fullUrl"].endswith("/Observation/obs-00002-003")
    sandbox.notify(url, SECRET, kind="vendor-event", resource="Condition/cond-00001-030")
    event = orjson.loads(received[3][1])
    assert event["eventType"] == "condition.updated" and event["resourceId"] == "cond-00001-030"
    assert set(event) >= {"eventId", "resourceType", "patient", "occurredAt"}


def test_python_function_sends_signed_plain(receiver) -> None:
    url, received = receiver
    status = send_notification(url, SECRET, kind="heartbeat", signature_style="plain")
    assert status == 204
    headers, body = received[0]
    assert headers["x-signature"] == _hmac(body)
