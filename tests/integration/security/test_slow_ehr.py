"""A slow EHR freezes nothing (issue #25, point 3).

An EHR that trickled one byte every 5 s held SQLite's write lock for as long as a
connection test waited on it: every signed-in request answered 500 after 30 s, sync jobs
stopped, and /api/health still said "database ok" — for 17 minutes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler

import httpx

from holovitals_sync.db import session_scope
from holovitals_sync.models import Role
from holovitals_sync.services.connections import TEST_DEADLINE
from tests.factories import make_connection, make_token, make_user
from tests.loopback import serve


class Trickle(BaseHTTPRequestHandler):
    """Answers 200 at once, then a byte of its body every second, for minutes."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(600):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            return

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


def test_a_connection_test_against_a_trickling_ehr_holds_up_nobody(served_api):
    with serve(Trickle, "/fhir") as ehr:
        with session_scope() as session:
            operator = make_token(session, make_user(session, "op", Role.OPERATOR))
            connection = make_connection(session, "Trickling", base_url=ehr).id
        headers = {"Authorization": f"Bearer {operator}"}
        answer: dict = {}

        def test_it() -> None:
            started = time.monotonic()
            response = httpx.post(
                f"{served_api}/connections/{connection}/test", headers=headers, timeout=300
            )
            answer.update(
                status=response.status_code, body=response.json(), took=time.monotonic() - started
            )

        tester = threading.Thread(target=test_it)
        tester.start()
        time.sleep(3)  # the test is now waiting on the EHR
        # Meanwhile others read, write (audited) and see a healthy database, promptly.
        for n in range(3):
            started = time.monotonic()
            made = httpx.post(
                f"{served_api}/sync/webhooks",
                headers=headers,
                timeout=30,
                json={
                    "name": f"hook {n}",
                    "url": "https://93.184.215.14/hook",
                    "event_types": ["sync.completed"],
                },
            )
            assert made.status_code == 201, made.text
            assert time.monotonic() - started < 5
        health = httpx.get(f"{served_api}/health", timeout=30).json()
        assert health["database"]["ok"], health
        tester.join(TEST_DEADLINE + 60)
    assert answer["status"] == 200 and answer["took"] < TEST_DEADLINE + 15, answer
    assert not all(step["ok"] for step in answer["body"])  # reported as a failed step


def test_health_says_the_database_is_down_when_no_write_gets_through(served_api, sqlite_url):
    path = sqlite_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None, timeout=1)
    holder.execute("BEGIN IMMEDIATE")  # someone holds the write lock and does not let go
    try:
        response = httpx.get(f"{served_api}/health", timeout=30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    body = response.json()
    assert response.status_code == 503 and not body["database"]["ok"]
    assert "takes no writes" in body["database"]["error"]
    assert httpx.get(f"{served_api}/health", timeout=30).json()["database"]["ok"]
