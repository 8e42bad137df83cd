"""The API's error handlers: a busy database is a 503 to retry, headers of an HTTP error go out."""

from __future__ import annotations

import sqlite3

from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc

from holovitals_sync.api.errors import install_error_handlers


def _app() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/locked")
    def locked() -> None:
        locked = sqlite3.OperationalError("database is locked")
        raise sa_exc.OperationalError("UPDATE x", {}, locked)

    @app.get("/pool")
    def pool() -> None:
        raise sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")

    @app.get("/gone")
    def gone() -> None:
        raise sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error"))

    @app.get("/limited")
    def limited() -> None:
        raise HTTPException(429, "too many attempts", headers={"Retry-After": "60"})

    return TestClient(app, raise_server_exceptions=False)


def test_a_locked_database_asks_the_client_to_retry() -> None:
    client = _app()
    for path in ("/locked", "/pool"):
        answer = client.get(path)
        assert answer.status_code == 503, path
        assert answer.headers["retry-after"] == "2"
        assert "nothing was changed" in answer.json()["error"]["message"]


def test_another_database_error_is_a_503_without_the_statement() -> None:
    answer = _app().get("/gone")
    assert answer.status_code == 503
    assert "retry-after" not in answer.headers
    assert "SELECT" not in answer.text


def test_an_http_errors_headers_go_out_with_it() -> None:
    answer = _app().get("/limited")
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "60"
    assert answer.json()["error"]["message"] == "too many attempts"
