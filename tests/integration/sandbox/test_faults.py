"""Every fault mode observably happens, deterministically, and stats count it."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from holovitals_sync.sandbox.server import SandboxServer

READ = "/Patient/pt-00001"


def _statuses(fhir: httpx.Client, n: int, path: str = READ) -> list[int]:
    return [fhir.get(path).status_code for _ in range(n)]


def test_rate_limit_every_nth_call(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    sandbox.set_faults(rate_limit_every=3, retry_after=0.2)
    responses = [fhir.get(READ) for _ in range(6)]
    assert [r.status_code for r in responses] == [200, 200, 429, 200, 200, 429]
    assert responses[2].headers["retry-after"] == "0.2"
    assert responses[2].json()["issue"][0]["code"] == "throttled"
    stats = sandbox.stats()
    assert stats["faults"]["rate_limit"] == 2 and stats["by_status"]["429"] == 2
    assert httpx.get(f"{sandbox.base_url}/metadata").status_code == 200  # never throttled
    assert sandbox.stats()["fhir_calls"] == 6


def test_errors_and_storm(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    sandbox.set_faults(error_every=2, error_status=500)
    assert _statuses(fhir, 4) == [200, 500, 200, 500]
    sandbox.set_faults(storm=3, retry_after=1)
    responses = [fhir.get(READ) for _ in range(4)]
    assert [r.status_code for r in responses] == [429, 429, 429, 200]
    assert responses[0].headers["retry-after"] == "1"


def test_latency(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    sandbox.set_faults(latency_ms=150)
    start = time.monotonic()
    assert fhir.get(READ).status_code == 200
    assert time.monotonic() - start >= 0.15


def test_token_expires_mid_run(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    sandbox.set_faults(expire_token_after=2)
    assert _statuses(fhir, 3) == [200, 200, 401]
    fresh = {"Authorization": f"Bearer {sandbox.token()}"}
    assert fhir.get(READ, headers=fresh).status_code == 200


def test_malformed_page(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    sandbox.set_faults(malformed_page=2)
    first = fhir.get("/Observation", params={"_count": 50}).json()
    next_url = next(lk["url"] for lk in first["link"] if lk["relation"] == "next")
    broken = fhir.get(next_url)
    assert broken.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(broken.content)
    assert fhir.get(next_url).json()["type"] == "searchset"  # the retry is fine
    garbage = fhir.get("/Observation", headers={"X-Sandbox-Fault": "malformed=bundle"}).json()
    assert garbage["entry"] == "garbage"


def test_drop_connection(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    sandbox.set_faults(drop_connection_every=2)
    assert fhir.get(READ).status_code == 200
    with pytest.raises(httpx.TransportError):
        fhir.get(READ)
    assert fhir.get(READ).status_code == 200
    with pytest.raises(httpx.TransportError):
        fhir.get(READ, headers={"X-Sandbox-Fault": "drop"})
    assert sandbox.stats()["faults"]["drop_connection"] == 2


def test_per_request_header_faults(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    resp = fhir.get(READ, headers={"X-Sandbox-Fault": "status=429,retry_after=0.5"})
    assert resp.status_code == 429 and resp.headers["retry-after"] == "0.5"
    assert fhir.get(READ, headers={"X-Sandbox-Fault": "status=503"}).status_code == 503
    assert fhir.get(READ, headers={"X-Sandbox-Fault": "expire_token"}).status_code == 401
    assert fhir.get(READ, headers={"X-Sandbox-Fault": "bogus"}).status_code == 400
    assert fhir.get(READ).status_code == 200


def test_truncated_ndjson(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    sandbox.configure(export_polls_before_complete=0)
    kick = fhir.get(
        "/$export",
        params={"_type": "Condition"},
        headers={"Prefer": "respond-async", "Accept": "application/fhir+json"},
    )
    manifest = fhir.get(kick.headers["content-location"]).json()
    url = manifest["output"][0]["url"]
    sandbox.set_faults(truncated_ndjson=True)
    body = fhir.get(url).content
    assert not body.endswith(b"\n")
    lines = body.split(b"\n")
    assert len(lines) == manifest["output"][0]["count"]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(lines[-1])
    sandbox.clear_faults()
    assert fhir.get(url).content.endswith(b"}\n")


def test_token_endpoint_faults_only_when_asked(sandbox: SandboxServer) -> None:
    sandbox.set_faults(storm=1)
    sandbox.token()  # not counted: the storm is still waiting for a FHIR call
    sandbox.set_faults(storm=1, token_endpoint_faults=True)
    with pytest.raises(httpx.HTTPStatusError) as err:
        sandbox.token()
    assert err.value.response.status_code == 429
    assert sandbox.token()


def test_stats_show_whether_retry_after_was_honoured(
    sandbox: SandboxServer, fhir: httpx.Client
) -> None:
    sandbox.set_faults(rate_limit_every=2, retry_after=0.25)
    assert fhir.get(READ).status_code == 200
    limited = fhir.get(READ)
    assert limited.status_code == 429
    time.sleep(float(limited.headers["retry-after"]))
    assert fhir.get(READ).status_code == 200
    calls = [r for r in sandbox.stats()["recent"] if r["path"].startswith("/fhir/Patient")]
    assert [c["status"] for c in calls] == [200, 429, 200]
    assert calls[2]["t"] - calls[1]["t"] >= 0.25
