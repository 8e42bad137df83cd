"""Behaviours the sandbox does not offer, played by a tiny scripted HTTP server.

Foreign-origin next links and export files, 409 for stale writes (Oracle Health), token
discovery through the CapabilityStatement only, and Retry-After given as an HTTP-date.
"""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from holovitals_sync.fhir import (
    BulkExporter,
    ClientConfig,
    ClientSecret,
    FhirClient,
    ForeignOriginError,
    OperationOutcomeError,
    PreconditionFailed,
    RetryPolicy,
    StaticToken,
)
from holovitals_sync.fhir.discovery import OAUTH_URIS


@dataclass
class Reply:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


class Script:
    """Replies per (method, path), consumed in order (the last one repeats); a request log."""

    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], list[Reply]] = {}
        self.log: list[tuple[str, str, str | None]] = []

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self.replies[(method, path)] = list(replies)

    def next(self, method: str, path: str) -> Reply:
        queue = self.replies.get((method, path.split("?")[0]))
        if not queue:
            return Reply(404, {"resourceType": "OperationOutcome", "issue": []})
        return queue.pop(0) if len(queue) > 1 else queue[0]


class Handler(BaseHTTPRequestHandler):
    script: Script

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.script.log.append((self.command, self.path, self.headers.get("Authorization")))
        reply = self.script.next(self.command, self.path)
        body = (
            reply.body
            if isinstance(reply.body, bytes)
            else (orjson.dumps(reply.body) if reply.body is not None else b"")
        )
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 - http.server's naming

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def quirky() -> Iterator[tuple[Script, int]]:
    script = Script()
    handler = type("ScriptedHandler", (Handler,), {"script": script})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield script, server.server_address[1]
    server.shutdown()
    server.server_close()


def make(port: int, credentials=None, **overrides) -> FhirClient:
    retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_retry_after=5)
    config = ClientConfig(base_url=f"http://127.0.0.1:{port}/fhir", retry=retry, **overrides)
    return FhirClient(config, credentials or StaticToken("static-token-value"))


def patient(pid: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "meta": {"versionId": "2"}}


def test_next_link_on_foreign_origin_is_refused(quirky) -> None:
    script, port = quirky
    script.on(
        "GET",
        "/fhir/Patient",
        Reply(
            200,
            {
                "resourceType": "Bundle",
                "type": "searchset",
                # localhost is another origin than 127.0.0.1, though the same machine
                "link": [{"relation": "next", "url": f"http://localhost:{port}/fhir/page2"}],
                "entry": [{"resource": patient("p1"), "search": {"mode": "match"}}],
            },
        ),
    )
    got = []
    with make(port) as client, pytest.raises(ForeignOriginError) as info:
        got.extend(r["id"] for r in client.search("Patient"))
    assert got == ["p1"]
    assert "localhost" in str(info.value) and "static-token-value" not in str(info.value)
    assert [path for _, path, _ in script.log] == ["/fhir/Patient"]


@pytest.mark.parametrize("configured", [True, False])
def test_409_stale_write_as_precondition_when_configured(quirky, configured: bool) -> None:
    script, port = quirky
    script.on(
        "PUT",
        "/fhir/Patient/p1",
        Reply(
            409,
            {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "conflict"}],
            },
        ),
    )
    client = make(port, conflict_is_precondition=configured)
    with client, pytest.raises(OperationOutcomeError) as info:
        client.update(patient("p1"), if_match_version="1")
    assert isinstance(info.value, PreconditionFailed) is configured
    assert info.value.status == 409
    assert len(script.log) == 1


def test_token_endpoint_found_in_capability_statement(quirky) -> None:
    script, port = quirky
    token_url = f"http://127.0.0.1:{port}/oauth/token"
    script.on(
        "GET",
        "/fhir/metadata",
        Reply(
            200,
            {
                "resourceType": "CapabilityStatement",
                "rest": [
                    {
                        "mode": "server",
                        "security": {
                            "extension": [
                                {
                                    "url": OAUTH_URIS,
                                    "extension": [{"url": "token", "valueUri": token_url}],
                                }
                            ]
                        },
                    }
                ],
            },
        ),
    )
    script.on("POST", "/oauth/token", Reply(200, {"access_token": "tok-1", "expires_in": 300}))
    script.on("GET", "/fhir/Patient/p1", Reply(200, patient("p1")))
    creds = ClientSecret(client_id="c", client_secret="s", scope="system/*.rs")
    with make(port, credentials=creds) as client:
        assert client.read("Patient", "p1")["id"] == "p1"
    paths = [(method, path.split("?")[0], auth) for method, path, auth in script.log]
    assert paths[0] == ("GET", "/fhir/.well-known/smart-configuration", None)  # 404 here
    assert paths[1] == ("GET", "/fhir/metadata", None)
    assert paths[2][:2] == ("POST", "/oauth/token")
    assert paths[3] == ("GET", "/fhir/Patient/p1", "Bearer tok-1")


def test_retry_after_as_http_date_is_honoured(quirky) -> None:
    script, port = quirky
    when = formatdate(time.time() + 2, usegmt=True)
    script.on(
        "GET",
        "/fhir/Patient/p1",
        Reply(503, None, {"Retry-After": when}),
        Reply(200, patient("p1")),
    )
    started = time.monotonic()
    with make(port) as client:
        assert client.read("Patient", "p1")["id"] == "p1"
    assert time.monotonic() - started >= 0.9  # whole seconds: at least 1 s of the 2 s asked
    assert len(script.log) == 2


def test_export_file_elsewhere_fetched_without_token(quirky) -> None:
    script, port = quirky
    status_url = f"http://127.0.0.1:{port}/fhir/status/1"
    files = f"http://localhost:{port}/files"  # another origin, e.g. a storage bucket
    script.on("GET", "/fhir/$export", Reply(202, None, {"Content-Location": status_url}))
    script.on(
        "GET",
        "/fhir/status/1",
        Reply(
            200,
            {
                "transactionTime": "2026-11-26T03:00:00Z",
                "request": "x",
                "requiresAccessToken": False,
                "output": [{"type": "Patient", "url": f"{files}/p.ndjson", "count": 2}],
                "error": [],
            },
        ),
    )
    script.on(
        "GET",
        "/files/p.ndjson",
        Reply(200, orjson.dumps(patient("a")) + b"\n" + orjson.dumps(patient("b")) + b"\n"),
    )
    with make(port) as client:
        bulk = BulkExporter(client)
        manifest = bulk.wait(bulk.kick_off())
        assert [r["id"] for r in bulk.iter_resources(manifest)] == ["a", "b"]
    auth_by_path = {path.split("?")[0]: auth for _, path, auth in script.log}
    assert auth_by_path["/fhir/$export"] == "Bearer static-token-value"
    assert auth_by_path["/files/p.ndjson"] is None


def test_a_relative_next_link_saved_in_a_checkpoint_resumes_on_the_same_server(quirky) -> None:
    """A next link given relative to the page ("Patient?page=2") is saved resolved, so a
    resumed run asks the connection's own server for it (it once raised ForeignOriginError).
    """
    from holovitals_sync.adapters.fetch import Fetcher
    from holovitals_sync.adapters.generic import PROFILE
    from holovitals_sync.adapters.plan import Task

    script, port = quirky
    page = {"resourceType": "Bundle", "type": "searchset"}
    script.on(
        "GET",
        "/fhir/Patient",
        Reply(
            200,
            {
                **page,
                "link": [{"relation": "next", "url": "Patient?page=2"}],
                "entry": [{"resource": patient("p1")}],
            },
        ),
        Reply(200, {**page, "entry": [{"resource": patient("p2")}]}),
    )
    with make(port) as client:
        fetcher = Fetcher(
            client,
            PROFILE,
            page_size=1,
            extra_params=[],
            patient_ids=list,
            export_target=lambda: ("system", None),
        )
        first = next(fetcher.run([Task("search", ("Patient",))], None))
        assert [r["id"] for r in first.resources] == ["p1"]
        saved = first.checkpoint["state"]["next"]
        assert saved == f"http://127.0.0.1:{port}/fhir/Patient?page=2"
        # A new run (a retried job) resumes from the saved checkpoint alone.
        resumed = list(fetcher.run([Task("search", ("Patient",))], first.checkpoint))
    assert [r["id"] for p in resumed for r in p.resources] == ["p2"]
    assert script.log[-1][1] == "/fhir/Patient?page=2"


class _Endless(BaseHTTPRequestHandler):
    """Every page links to a new one that was never asked for before, and is empty."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        n = int(self.path.rsplit("page=", 1)[-1]) if "page=" in self.path else 0
        body = orjson.dumps(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "link": [{"relation": "next", "url": f"Observation?page={n + 1}"}],
                "entry": [],
            }
        )
        time.sleep(0.05)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_paging_that_never_ends_fails_instead_of_holding_a_worker() -> None:
    """Next links that never repeat exactly once ran 9,795 pages in 7 minutes."""
    from holovitals_sync.adapters.fetch import Fetcher
    from holovitals_sync.adapters.generic import PROFILE
    from holovitals_sync.adapters.plan import Task
    from holovitals_sync.fhir.errors import EndlessPaging
    from tests.loopback import serve

    with serve(_Endless, "/fhir") as base:
        retry = RetryPolicy(max_attempts=1)
        with FhirClient(
            ClientConfig(base_url=base, retry=retry, max_pages=25), StaticToken("t")
        ) as client:
            with pytest.raises(EndlessPaging) as endless:
                list(client.pages(client.url("Observation")))
            assert "after 25 pages" in str(endless.value)
        with FhirClient(ClientConfig(base_url=base, retry=retry), StaticToken("t")) as client:
            fetcher = Fetcher(
                client,
                PROFILE,
                page_size=10,
                extra_params=[],
                patient_ids=list,
                export_target=lambda: ("system", None),
            )
            fetcher.stall_seconds = 0.5  # empty pages, on time each, for longer than this
            with pytest.raises(EndlessPaging) as stalled:
                list(fetcher.run([Task("search", ("Observation",))], None))
            assert "no resources from the EHR" in str(stalled.value)
