"""Broken FHIR resources served by the EHR flow through the real sync loop: each becomes a
record error (resource id, element path, a message without the value), the rest of the
batch is stored, and replaying a batch records nothing twice."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from holovitals_sync.adapters import content_hash
from holovitals_sync.db import session_scope
from holovitals_sync.models import (
    EHRConnection,
    JobType,
    RecordError,
    SyncedRecord,
    TransformKind,
)
from holovitals_sync.sandbox.config import SandboxConfig
from holovitals_sync.sandbox.server import SandboxServer
from holovitals_sync.services.orchestration import lifecycle
from holovitals_sync.services.orchestration.batching import Batch
from holovitals_sync.services.orchestration.inbound import apply_batch
from holovitals_sync.services.transformation.schemas import RuleIn
from holovitals_sync.services.transformation.service import DataTransformationService
from tests.factories import make_connection
from tests.integration.sync.conftest import TESTER, start, wait_status

from .conftest import error_rows, local_hashes, remote_resources

pytestmark = pytest.mark.timeout(180)
HUGE = "Q" * 1_100_000
SECRET_NAME = "Zebediah Quuxley"  # a stand-in for PHI: must never reach an error message


def deep(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": SECRET_NAME}
    for _ in range(levels):
        node = {"url": "http://example.org/nest", "extension": [node]}
    return node


def broken_variants(good: dict[str, Any]) -> dict[str, tuple[Any, set[str | None]]]:
    """id -> (body served, element paths its record errors must name)."""

    def variant(rid: str, **changes: Any) -> dict[str, Any]:
        body = copy.deepcopy(good)
        body.pop("meta", None)
        body["id"] = rid
        body.update(changes)
        return body

    no_id = variant("x")
    del no_id["id"]
    missing = variant("bad-missing")
    for name in ("status", "code", "subject"):
        missing.pop(name, None)
    return {
        "bad-types": (variant("bad-types", status=404, code=SECRET_NAME), {"status", "code"}),
        "bad-missing": (missing, {"status", "code", "subject"}),
        "bad-huge": (variant("bad-huge", note=[{"text": HUGE}]), {"note[0].text"}),
        "bad-deep": (variant("bad-deep", extension=[deep(60)]), None),
        "bad-date": (
            variant("bad-date", effectiveDateTime="2021-02-30T10:00:00Z"),
            {"effectiveDateTime"},
        ),
        "bad-unknown": (
            {"resourceType": "Frobnicator", "id": "bad-unknown", "name": SECRET_NAME},
            {"resourceType"},
        ),
        "bad-noid": (no_id, {"id"}),
        "bad-rule": (variant("bad-rule", valueDateTime="the day before yesterday"), None),
    }


@pytest.fixture(scope="module")
def bad_ehr_server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(patients=2, seed=5), in_subprocess=True) as server:
        good = next(
            r
            for r in remote_resources(server, ("Observation",))
            if isinstance(r, dict) and r.get("status")
        )
        server.seed(
            [("Observation", rid, body) for rid, (body, _) in broken_variants(good).items()]
        )
        yield server


@pytest.fixture
def bad_ehr(bad_ehr_server: SandboxServer) -> Iterator[SandboxServer]:
    bad_ehr_server.reset()
    bad_ehr_server.configure(
        default_page_size=7,
        export_polls_before_complete=0,
        export_retry_after=0.1,
        export_file_max_lines=9,
    )
    yield bad_ehr_server


@pytest.fixture
def bad_connection(fault_env: str, bad_ehr: SandboxServer) -> EHRConnection:
    with session_scope() as session:
        connection = make_connection(
            session,
            "Sandbox Broken",
            base_url=bad_ehr.base_url,
            client_id="holovitals-demo",
            client_secret="demo-secret",
            scopes="system/*.read system/*.write",
        )
        # A rule that cannot apply to one record: its failure is a record error too.
        DataTransformationService(session, actor=TESTER).create(
            RuleIn(
                kind=TransformKind.DATETIME_NORMALISE,
                connection_id=connection.id,
                resource_type="Observation",
                params={"paths": ["valueDateTime"]},
            )
        )
        return connection


def expected_store(ehr: SandboxServer) -> dict[tuple[str, str], str]:
    """Good resources, plus the one only missing required elements (lenient: flagged)."""
    out = {}
    for res in remote_resources(ehr):
        rid = str(res.get("id", ""))
        if rid and not rid.startswith("bad-") or rid in ("bad-missing", "bad-rule"):
            out[(res["resourceType"], rid)] = content_hash(res)
    return out


def assert_errors(job_id: int, good: dict[str, Any]) -> None:
    rows = error_rows(job_id)
    by_id: dict[str | None, list[RecordError]] = {}
    for row in rows:
        by_id.setdefault(row.remote_id, []).append(row)
    for rid, (_, paths) in broken_variants(good).items():
        key = None if rid == "bad-noid" else rid
        assert key in by_id, (rid, sorted(map(str, by_id)))
        if paths:
            assert paths <= {row.path for row in by_id[key]}, (rid, by_id[key])
    for row in rows:
        assert SECRET_NAME not in row.message and "QQQQ" not in row.message
        assert len(row.message) < 1000
    assert "rule" in by_id["bad-rule"][0].path and by_id["bad-rule"][0].severity == "warning"
    keys = [(r.resource_type, r.remote_id, r.path, r.message) for r in rows]
    assert len(keys) == len(set(keys))  # nothing recorded twice


@pytest.mark.parametrize("job_type", [JobType.FULL, JobType.INCREMENTAL])
def test_broken_resources_become_record_errors_and_the_rest_is_stored(
    bad_connection, bad_ehr, pools, job_type
):
    pools.start("sync")
    job = wait_status(start(bad_connection.id, job_type), "completed", "failed", timeout=120)
    assert job.status.value == "completed", (job.last_error, pools.logs())
    assert local_hashes(bad_connection.id) == expected_store(bad_ehr)
    good = next(
        r
        for r in remote_resources(bad_ehr, ("Observation",))
        if isinstance(r, dict) and r.get("id") == "bad-types"
    )
    assert_errors(job.id, {**good, "status": "final", "code": {}})
    assert job.invalid >= 7
    with session_scope() as session:
        flagged = session.exec(
            select(SyncedRecord.remote_id).where(
                SyncedRecord.connection_id == bad_connection.id, SyncedRecord.flagged_invalid
            )
        )
        assert set(flagged) == {"bad-missing"}


def test_a_replayed_batch_records_its_errors_once(bad_connection, bad_ehr):
    resources = remote_resources(bad_ehr, ("Observation",))
    job_id = start(bad_connection.id, JobType.FULL)  # no worker runs in this test
    with session_scope() as session:
        job = lifecycle.begin_run(session, job_id=job_id, rq_job_id=None)
    batch = Batch(resources, checkpoint=None)
    apply_batch(job, bad_connection, batch)
    first = [(r.resource_type, r.remote_id, r.path, r.message) for r in error_rows(job_id)]
    stored = local_hashes(bad_connection.id)
    apply_batch(job, bad_connection, batch)  # a resumed attempt replaying its last batch
    again = [(r.resource_type, r.remote_id, r.path, r.message) for r in error_rows(job_id)]
    assert again == first and len(first) >= 8
    assert local_hashes(bad_connection.id) == stored
