"""Bulk Data $export: kick-off, polling, manifest, NDJSON files, _since, cancel, 429."""

from __future__ import annotations

import time

import httpx
import orjson

from holovitals_sync.sandbox.server import SandboxServer

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


def _kickoff(fhir: httpx.Client, path: str, **params: str) -> httpx.Response:
    return fhir.get(path, params=params, headers=ASYNC)


def _poll(fhir: httpx.Client, status_url: str) -> tuple[dict, int]:
    polls = 0
    while True:
        resp = fhir.get(status_url)
        polls += 1
        if resp.status_code == 200:
            return resp.json(), polls
        assert resp.status_code == 202
        assert resp.headers["x-progress"] and resp.headers["retry-after"]
        time.sleep(float(resp.headers["retry-after"]))


def test_group_export_round_trip(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    sandbox.configure(export_polls_before_complete=2, export_retry_after=0.05)
    resp = _kickoff(fhir, "/Group/all-patients/$export", _type="Patient,Observation")
    assert resp.status_code == 202
    manifest, polls = _poll(fhir, resp.headers["content-location"])
    assert polls == 3
    assert manifest["requiresAccessToken"] is True and manifest["transactionTime"]
    assert {o["type"] for o in manifest["output"]} == {"Patient", "Observation"}
    for out in manifest["output"]:
        assert out["url"].startswith(sandbox.base_url)
        with fhir.stream("GET", out["url"]) as stream:
            assert stream.headers["content-type"].startswith("application/fhir+ndjson")
            lines = [orjson.loads(line) for line in stream.iter_lines() if line]
        assert len(lines) == out["count"]
        assert {r["resourceType"] for r in lines} == {out["type"]}
    assert httpx.get(manifest["output"][0]["url"]).status_code == 401  # token required


def test_kickoff_needs_prefer_and_known_types(fhir: httpx.Client) -> None:
    assert fhir.get("/$export").status_code == 400
    assert _kickoff(fhir, "/$export", _type="Spaceship").status_code == 400
    assert _kickoff(fhir, "/Group/nope/$export").status_code == 404


def test_since_split_files_and_error_file(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    sandbox.configure(export_polls_before_complete=0, export_file_max_lines=3)
    day = sandbox.clinic_day(12)
    manifest, _ = _poll(
        fhir, _kickoff(fhir, "/$export", _since=day["since"]).headers["content-location"]
    )
    exported: set[tuple[str, str]] = set()
    for out in manifest["output"]:
        lines = fhir.get(out["url"]).text.splitlines()
        assert 1 <= len(lines) <= 3
        exported |= {(out["type"], orjson.loads(x)["id"]) for x in lines}
    assert exported == {(t, i) for t, ids in day["changed"].items() for i in ids}
    narrow = httpx.post(
        sandbox.token_url,
        auth=("holovitals-demo", "demo-secret"),
        data={"grant_type": "client_credentials", "scope": "system/Patient.read"},
    ).json()
    headers = {**ASYNC, "Authorization": f"Bearer {narrow['access_token']}"}
    kick = httpx.get(
        f"{sandbox.base_url}/Patient/$export",
        headers=headers,
        params={"_type": "Patient,Condition"},
    )
    done = httpx.get(kick.headers["content-location"], headers=headers).json()
    assert {o["type"] for o in done["output"]} == {"Patient"}
    err = httpx.get(done["error"][0]["url"], headers=headers).text.splitlines()
    assert orjson.loads(err[0])["resourceType"] == "OperationOutcome"


def test_cancel_and_one_export_at_a_time(sandbox: SandboxServer, fhir: httpx.Client) -> None:
    sandbox.configure(export_polls_before_complete=5, export_one_at_a_time=True)
    status_url = _kickoff(fhir, "/$export", _type="Patient").headers["content-location"]
    busy = _kickoff(fhir, "/$export", _type="Patient")
    assert busy.status_code == 429 and busy.headers["retry-after"]
    assert fhir.delete(status_url).status_code == 202
    assert fhir.get(status_url).status_code == 404
    assert _kickoff(fhir, "/$export", _type="Patient").status_code == 202
