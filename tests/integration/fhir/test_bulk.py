"""Bulk Data $export against the sandbox: polling, manifest, streaming, resume, faults."""

import tracemalloc
from collections.abc import Iterator

import orjson
import pytest

from holovitals_sync.fhir import (
    BulkExporter,
    BulkJob,
    ClientSecret,
    FhirClient,
    ForeignOriginError,
    Manifest,
    OutputFile,
    ResourceNotFound,
    TruncatedFile,
)
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.server import SandboxServer
from tests.integration.fhir.conftest import client_config, demo_credentials

FAST = {"export_retry_after": 0.05, "export_polls_before_complete": 2}


@pytest.fixture(scope="module")
def big_sandbox() -> Iterator[SandboxServer]:
    """A larger EHR of its own (about 13,000 resources) for the memory test."""
    with SandboxServer(SandboxConfig(patients=300, seed=99, **FAST)) as server:
        yield server


def exporter(client: FhirClient) -> BulkExporter:
    return BulkExporter(client, poll_interval=0.05, max_poll_interval=1.0)


def test_export_streams_with_flat_memory(big_sandbox: SandboxServer) -> None:
    with FhirClient(client_config(big_sandbox), demo_credentials()) as client:
        bulk = exporter(client)
        manifest = bulk.wait(bulk.kick_off())
        expected = manifest.total_count
        assert expected is not None and expected > 10_000
        count = 0
        streamed = 0
        tracemalloc.start()
        try:
            for resource in bulk.iter_resources(manifest):
                count += 1
                streamed += len(orjson.dumps(resource))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert count == expected
    # Megabytes streamed, a small constant of memory: never a whole file in memory.
    assert streamed > 6_000_000
    assert peak < 3_000_000, f"peak {peak} bytes while streaming {streamed} bytes"


def test_export_progress_manifest_and_resume(client: FhirClient, sandbox) -> None:
    sandbox.configure(**FAST)
    bulk = exporter(client)
    job = bulk.kick_off(level="patient", types=["Patient", "Condition"])
    saved = orjson.dumps(job.to_dict())  # what a worker checkpoints before it dies

    restored = BulkJob.from_dict(orjson.loads(saved))
    progress = []
    manifest = exporter(client).wait(restored, on_progress=progress.append)
    assert isinstance(manifest, Manifest)
    assert [p.progress for p in progress] == ["33% complete", "66% complete"]
    assert all(p.retry_after == 0.05 for p in progress)
    assert manifest.requires_access_token and manifest.transaction_time
    assert restored.transaction_time == manifest.transaction_time
    assert {f.type for f in manifest.output} == {"Patient", "Condition"}
    for output in manifest.output:
        resources = list(bulk.iter_file(manifest, output))
        assert len(resources) == output.count
        assert {r["resourceType"] for r in resources} == {output.type}
    kickoffs = [r for r in sandbox.stats()["recent"] if r["path"].endswith("$export")]
    assert len(kickoffs) == 1  # resumed, not restarted


def test_group_export_since(client: FhirClient, sandbox) -> None:
    from datetime import datetime

    sandbox.configure(**FAST)
    bulk = exporter(client)
    group_id = next(client.search("Group"))["id"]
    first = bulk.wait(bulk.kick_off(level="group", group_id=group_id, types=["Observation"]))
    day = sandbox.clinic_day(changes=30)
    since = datetime.fromisoformat(first.transaction_time)
    second = bulk.wait(
        bulk.kick_off(level="group", group_id=group_id, types=["Observation"], since=since)
    )
    ids = {r["id"] for r in bulk.iter_resources(second)}
    assert ids == set(day["changed"].get("Observation", []))


def test_truncated_file_reports_line_and_keeps_earlier_lines(client: FhirClient, sandbox) -> None:
    sandbox.configure(**FAST)
    bulk = exporter(client)
    manifest = bulk.wait(bulk.kick_off(types=["Observation"]))
    (output,) = manifest.output
    sandbox.set_faults(truncated_ndjson=True)
    got = []
    with pytest.raises(TruncatedFile) as info:
        got.extend(bulk.iter_file(manifest, output))
    assert len(got) == output.count - 1
    assert info.value.line_number == output.count
    assert info.value.url == output.url and output.url in str(info.value)


def test_error_file_and_cancel(make_client, sandbox) -> None:
    sandbox.configure(**FAST)
    sandbox.register_client("hv-patients-only", ["system/Patient.read"], secret="s3cret-value")
    client = make_client(
        ClientSecret(
            client_id="hv-patients-only", client_secret="s3cret-value", scope="system/Patient.read"
        )
    )
    bulk = exporter(client)
    manifest = bulk.wait(bulk.kick_off(types=["Patient", "Observation"]))
    assert [f.type for f in manifest.output] == ["Patient"]
    errors = list(bulk.iter_errors(manifest))
    assert errors and errors[0]["resourceType"] == "OperationOutcome"

    job = bulk.kick_off(types=["Patient"])
    bulk.cancel(job)
    with pytest.raises(ResourceNotFound):
        bulk.poll_once(job)


def test_manifest_file_on_foreign_origin_gets_no_token(client: FhirClient, sandbox) -> None:
    foreign = OutputFile(type="Patient", url="https://files.elsewhere.example/x.ndjson")
    manifest = Manifest(
        transaction_time="t",
        request="r",
        requires_access_token=True,
        output=(foreign,),
        error=(),
        raw={},
    )
    before = sandbox.stats()["requests"]
    with pytest.raises(ForeignOriginError):
        list(exporter(client).iter_file(manifest, foreign))
    assert sandbox.stats()["requests"] == before + 1  # only the stats call itself
