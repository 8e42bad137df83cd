"""The receiver served in front of the whole backend app (`api.inbound.InboundFastPath`), as `up`
serves it under Reflex: events never reach the app behind it, everything else does, and a
crash in the receiver still answers a 500 in the API's error shape and stores nothing.

The backend is the real API in uvicorn on loopback, wrapped as `receiver_ahead` wraps
Reflex's app; `test_forgeries_replays_and_oversized_bodies_are_refused` checks its answers
match the route's.
"""

from __future__ import annotations

import httpx
import pytest

from holovitals_sync.services.webhooks import inbound

from .test_inbound import _connection, _events
from .test_inbound_writer import _post

AHEAD = pytest.mark.parametrize("backend", ["ahead"], indirect=True)


@AHEAD
def test_events_are_answered_ahead_and_everything_else_goes_behind(backend, redis_client):
    cid, secret = _connection(backend, "EHR ahead", "holovitals_hmac")
    backend.behind.clear()
    url = backend.inbound(cid)
    answers = [_post(url, secret, f"pt-0000{n}") for n in range(1, 4)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert sorted(e.id for e in _events(cid)) == sorted(a.json()["event_id"] for a in answers)
    # Not answered ahead: a GET of its path, an id longer than the receiver's, other routes.
    assert httpx.get(url).status_code == 405
    too_long = backend.inbound(10**19)
    assert httpx.post(too_long, content=b"{}").status_code == 404  # the route: no connection
    health = httpx.get(f"{backend.url}/api/health")
    assert backend.behind == [
        f"GET /api/webhooks/inbound/{cid}",
        f"POST /api/webhooks/inbound/{10**19}",
        "GET /api/health",
    ], health.status_code


@AHEAD
def test_a_crash_in_the_receiver_answers_500_and_stores_nothing(
    backend, redis_client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    cid, secret = _connection(backend, "EHR crash", "holovitals_hmac")
    url = backend.inbound(cid)
    checked = inbound.check

    def crash(*args: object, **kwargs: object) -> object:
        raise RuntimeError("pt-00001 was in this message")

    monkeypatch.setattr(inbound, "check", crash)
    failed = _post(url, secret, "pt-00001")
    assert failed.status_code == 500
    assert failed.json()["error"]["message"] == "internal error"
    assert _events(cid) == []
    assert "RuntimeError" in caplog.text and "pt-00001" not in caplog.text
    monkeypatch.setattr(inbound, "check", checked)
    again = _post(url, secret, "pt-00001")
    assert again.status_code == 202
    assert [e.id for e in _events(cid)] == [again.json()["event_id"]]
