"""The sync dashboard's read side (cards, job pages, job detail) on SQLite and PostgreSQL,
and the pure pieces of the Jobs tab: row patching, event coalescing, form messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import JobStatus, JobType, SyncedRecord, SyncJob
from holovitals_sync.models.types import utcnow
from holovitals_sync.services import audit
from holovitals_sync.services.orchestration import JobRequest
from holovitals_sync.ui.state.jobs import JobRow
from holovitals_sync.ui.state.live import Coalescer, decode
from holovitals_sync.ui.state.start_sync import field_errors
from holovitals_sync.ui.views import dashboard
from holovitals_sync.ui.views.dashboard import JobFilter
from tests.factories import make_conflict, make_connection, make_job

NOW = datetime(2026, 11, 26, 12, 30, 20, tzinfo=UTC)


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    migrations.upgrade(database_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", database_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield database_url
    get_engine().dispose()


def _record(
    session,
    connection_id: int,
    remote_id: str,
    synced: datetime | None,
    job_id: int | None = None,
    **flags,
) -> None:
    session.add(SyncedRecord(connection_id=connection_id, resource_type="Observation",
                             remote_id=remote_id, last_synced_at=synced, last_job_id=job_id,
                             remote_version="3", **flags))  # fmt: skip
    session.flush()


def test_job_pages_filter_and_count_on_the_server(db):
    with session_scope() as session:
        first = make_connection(session, "First").id
        second = make_connection(session, "Second").id
        ids = [make_job(session, first, JobStatus.COMPLETED).id for _ in range(5)]
        failed_job = make_job(session, second, JobStatus.FAILED)
        failed_job.job_type = JobType.FULL  # the factory makes incremental jobs
        failed_job.deleted = 4  # records it tombstoned
        session.flush()
        failed = failed_job.id

    with session_scope() as session:
        page = dashboard.list_jobs(session, JobFilter(), offset=0, limit=4)
        assert page.total == 6
        assert [r["id"] for r in page.rows] == [failed, *ids[::-1][:3]]  # newest first
        assert page.rows[0]["connection"] == "Second"
        assert (page.rows[0]["deleted"], JobRow.of(page.rows[0]).deleted) == (4, 4)
        rest = dashboard.list_jobs(session, JobFilter(), offset=4, limit=4)
        assert [r["id"] for r in rest.rows] == ids[:2][::-1]

        only_failed = dashboard.list_jobs(session, JobFilter(status=JobStatus.FAILED))
        assert [r["id"] for r in only_failed.rows] == [failed]
        assert only_failed.rows[0]["last_error"] == "ServerError: HTTP 503"
        by_connection = dashboard.list_jobs(session, JobFilter(connection_id=first))
        assert by_connection.total == 5
        by_type = dashboard.list_jobs(session, JobFilter(job_type=JobType.FULL))
        assert [r["id"] for r in by_type.rows] == [failed]
        # Out-of-range paging is clamped rather than refused.
        assert dashboard.list_jobs(session, JobFilter(), offset=-3, limit=10_000).limit == 100


def test_summary_counts_today_per_minute_and_conflicts(db):
    with session_scope() as session:
        cid = make_connection(session).id
        for i, ago in enumerate([timedelta(seconds=5), timedelta(minutes=3),
                                 timedelta(minutes=3, seconds=10), timedelta(minutes=70),
                                 timedelta(hours=13)]):  # fmt: skip
            _record(session, cid, f"obs-{i}", NOW - ago)
        _record(session, cid, "never", None)
        job = make_job(
            session,
            cid,
            JobStatus.COMPLETED,
            started_at=NOW - timedelta(seconds=30),
            finished_at=NOW - timedelta(seconds=10),
        )
        make_job(
            session,
            cid,
            JobStatus.COMPLETED,
            started_at=NOW - timedelta(seconds=90),
            finished_at=NOW - timedelta(seconds=30),
        )
        assert job.id
        make_conflict(session, cid)

    with session_scope() as session:
        summary = dashboard.summary(session, None, now=NOW)
    # 13 hours ago is yesterday (UTC) at 12:30; 70 minutes ago is today but out of the chart.
    assert summary.records_today == 4
    assert summary.average_duration_seconds == 40.0
    assert summary.open_conflicts == {"high": 0, "medium": 0, "low": 1}
    assert summary.queues == {}
    chart = summary.throughput
    assert len(chart) == 60 and chart[-1]["minute"] == "12:30" and chart[0]["minute"] == "11:31"
    per_minute = {point["minute"]: point["records"] for point in chart}
    assert per_minute["12:30"] == 1 and per_minute["12:27"] == 2
    assert sum(per_minute.values()) == 3


def test_summary_reads_queue_registries(db, redis_client):
    with session_scope() as session:
        summary = dashboard.summary(session, redis_client, now=NOW)
    assert set(summary.queues) == {"sync", "webhooks", "conflicts", "transformations"}
    assert summary.queues["sync"]["waiting"] == 0


def test_job_detail_timeline_and_touched_records(db):
    # Relative to the wall clock: the job row's creation and the audited retry are stamped
    # with it (a fixed instant made this test fail once the day of writing moved past it).
    end = utcnow() + timedelta(minutes=10)
    with session_scope() as session:
        cid = make_connection(session).id
        job = make_job(
            session,
            cid,
            JobStatus.FAILED,
            queued_at=end - timedelta(minutes=2),
            started_at=end - timedelta(minutes=1),
            finished_at=end,
        )
        other = make_job(session, cid, JobStatus.COMPLETED)
        for action in ("sync_job.start", "sync_job.retry"):
            audit.record(session, actor=audit.Actor(audit.ActorKind.USER, "ada", None),
                         action=action, target_type="sync_job", target_id=job.id,
                         details={})  # fmt: skip
        for i in range(25):
            _record(session, cid, f"obs-{i}", NOW, job.id, flagged_invalid=i == 0)
        _record(session, cid, "elsewhere", NOW, other.id)
        job_id = job.id

    with session_scope() as session:
        job = session.get(SyncJob, job_id)
        steps = dashboard.timeline(session, job)
        first = dashboard.touched_records(session, job_id, offset=0, limit=10)
        last = dashboard.touched_records(session, job_id, offset=20, limit=10)
        errors = dashboard.error_count(session, job_id)
    whats = [s["what"] for s in steps]
    assert whats[0] == "Requested" and whats[-1] == "Finished: failed"  # oldest first
    assert steps[0]["who"] == "tests"  # who asked for it, said once: no audited "start"
    assert {"Queued", "Started", "Retried"} <= set(whats) and len(whats) == 5
    assert next(s for s in steps if s["what"] == "Retried")["who"] == "ada"
    assert first.total == 25 and len(first.rows) == 10 and len(last.rows) == 5
    assert last.rows[-1]["remote_id"] == "obs-0" and last.rows[-1]["flags"] == "invalid"
    assert set(first.rows[0]) == {
        "id",
        "resource_type",
        "remote_id",
        "version",
        "synced_at",
        "flags",
    }  # ids and flags only: no bodies, no PHI
    assert errors == 0


def _row(**overrides) -> JobRow:
    fields = {
        "id": 7,
        "connection_id": 1,
        "connection": "c",
        "job_type": "full",
        "direction": "inbound",
        "priority": "default",
        "status": "running",
        "progress": 0.1,
        "fetched": 10,
        "created": 10,
        "updated": 0,
        "unchanged": 0,
        "invalid": 0,
        "conflicts": 0,
        "deleted": 0,
        "attempts": 1,
        "max_attempts": 3,
        "scope": "",
        "requested_by": "ada",
        "last_error": "",
        "trace_id": "",
        "trace_link": "",
        "created_at": NOW,
        "finished_at": None,
    }
    return JobRow.of(fields | overrides)


def test_row_patched_by_events():
    row = _row()
    assert row.percent == 10 and row.can_cancel and not row.can_retry
    moved = row.patched(
        {
            "job_id": 7,
            "status": "running",
            "progress": 0.5,
            "fetched": 50,
            "created": 40,
            "updated": 10,
            "conflicts": 2,
            "deleted": 3,
        }
    )
    assert (moved.percent, moved.fetched, moved.created, moved.conflicts) == (50, 50, 40, 2)
    assert moved.deleted == 3  # the tombstones a sweep or full sync made move live too
    done = moved.patched({"job_id": 7, "status": "failed", "attempts": 3})
    assert done.status == "failed" and done.can_retry and not done.can_cancel
    assert done.fetched == 50 and done.percent == 50  # fields the event lacks are kept


def test_coalescer_keeps_newest_per_job_and_paces_flushes():
    pace = Coalescer(interval=0.25, burst=1)
    assert pace.take(0.0) is None  # nothing pending
    pace.add({"job_id": 1, "event": "progress", "fetched": 5})
    pace.add({"job_id": 1, "event": "progress", "fetched": 9})
    pace.add({"job_id": "x"})  # ignored: not a job event
    events, changed = pace.take(10.0)
    assert events == {1: {"job_id": 1, "event": "progress", "fetched": 9}} and not changed
    pace.add({"job_id": 2, "event": "state", "status": "completed"})
    assert pace.take(10.1) is None  # too soon after the last flush
    assert pace.wait(10.1) == pytest.approx(0.15)
    events, changed = pace.take(10.25)
    assert set(events) == {2} and changed
    assert decode(b"not json") is None and decode(b"[1]") is None


def test_coalescer_lets_a_short_burst_through_at_once_and_paces_a_long_one():
    pace = Coalescer(interval=0.25, burst=3)
    for n, now in enumerate((100.0, 100.05, 100.1)):  # a job starts, a batch, it ends
        pace.add({"job_id": 1, "event": "progress", "fetched": n})
        assert pace.take(now) is not None  # no wait after a quiet spell
    pace.add({"job_id": 1, "event": "progress", "fetched": 3})
    assert pace.take(100.15) is None  # the burst is spent: one flush per interval now
    assert pace.wait(100.15) == pytest.approx(0.1)  # 100.1 + 0.25 - 100.15 (refilling)
    assert pace.take(100.25) is not None
    shown = []
    for step in range(40):  # events every 50 ms for two seconds
        pace.add({"job_id": 1, "event": "progress", "fetched": 4 + step})
        if (batch := pace.take(100.3 + step * 0.05)) is not None:
            shown.append(batch[0][1]["fetched"])
    assert len(shown) <= 9  # about four a second, however fast the events come
    if (batch := pace.take(110.0)) is not None:
        shown.append(batch[0][1]["fetched"])
    assert shown[-1] == 43 and not pace.pending  # the burst's last event is never dropped


def test_summary_refresh_is_paced_but_never_dropped():
    pace = Coalescer()
    assert not pace.summary_due(0.0)  # nothing applied yet
    pace.owe_summary(changed=False)
    assert pace.summary_due(100.0)
    pace.owe_summary(changed=False)
    assert not pace.summary_due(101.0)  # within 3 s of the last one: stays owed
    pace.owe_summary(changed=True)  # a status change shortens the wait to 1 s
    assert pace.wait(101.0) == pytest.approx(0.0)
    assert pace.summary_due(101.0)
    assert not pace.summary_due(200.0)  # paid


def test_list_refreshes_are_paced_and_the_last_notice_is_kept():
    pace = Coalescer()
    assert pace.take_topics(0.0) == set()  # nothing changed
    pace.add_topics({"conflicts"})
    assert pace.take_topics(0.0) == {"conflicts"}  # the first after a quiet spell: at once
    pace.add_topics({"webhooks"})
    pace.add_topics({"conflicts"})
    assert pace.take_topics(0.5) == set()  # a burst waits for the interval...
    assert pace.wait(0.5) == pytest.approx(0.5)
    assert pace.take_topics(1.0) == {"conflicts", "webhooks"}  # ...and is re-read once
    assert pace.wait(1.0) == pytest.approx(2.0)  # nothing owed: only the idle check


def test_chart_ticks_are_linear_round_steps_covering_the_peak():
    assert dashboard.nice_ticks(0) == [0, 1, 2, 3, 4, 5]
    assert dashboard.nice_ticks(2200) == [0, 500, 1000, 1500, 2000, 2500]
    assert dashboard.nice_ticks(50) == [0, 10, 20, 30, 40, 50]
    for peak in (7, 99, 101, 550, 2501, 123_456):
        ticks = dashboard.nice_ticks(peak)
        steps = {b - a for a, b in zip(ticks, ticks[1:], strict=False)}
        assert len(steps) == 1 and ticks[0] == 0 and ticks[-1] >= peak
        assert len(ticks) <= dashboard.MAX_INTERVALS + 1
        assert str(steps.pop()).rstrip("0") in ("1", "2", "25", "5")


def test_start_form_messages_name_the_field():
    with pytest.raises(ValidationError) as bad_type:
        JobRequest.model_validate(
            {"connection_id": 1, "job_type": "resource", "resource_type": "not a type"}
        )
    assert set(field_errors(bad_type.value)) == {"resource_type"}
    with pytest.raises(ValidationError) as missing:
        JobRequest.model_validate({"connection_id": 1, "job_type": "patient"})
    assert field_errors(missing.value) == {"patient_id": "Enter the patient's id at the EHR."}
    with pytest.raises(ValidationError) as priority:
        JobRequest.model_validate({"connection_id": 1, "job_type": "full", "priority": "now"})
    assert set(field_errors(priority.value)) == {"priority"}


def test_alerts_banner_and_list_read_one_page(db, redis_client):
    from holovitals_sync.models import Alert, AlertKind, AlertStatus, Severity
    from holovitals_sync.services.alerts import acknowledge
    from holovitals_sync.ui.state.alerts import PAGE_SIZE, read_page

    with session_scope() as session:
        for i in range(PAGE_SIZE + 2):
            session.add(
                Alert(
                    kind=AlertKind.QUEUE_DEPTH,
                    severity=Severity.MEDIUM,
                    subject=f"queue:q{i}",
                    message=f"{i} waiting",
                    queue="sync",
                    raised_at=NOW + timedelta(seconds=i),
                )
            )
        session.commit()
        acknowledge(
            session,
            alert_id=1,
            actor=audit.Actor(audit.ActorKind.USER, "ada", None),
            redis=redis_client,
        )
    snapshot = read_page((AlertStatus.OPEN.value, 0))
    assert snapshot.open_count == PAGE_SIZE + 1
    newest = [f"{PAGE_SIZE + 1 - i} waiting." for i in range(3)]
    assert [a.message for a in snapshot.banner] == newest
    assert len(snapshot.rows) == PAGE_SIZE and snapshot.has_next
    assert not read_page((AlertStatus.OPEN.value, PAGE_SIZE)).has_next
    acknowledged = read_page((AlertStatus.ACKNOWLEDGED.value, 0)).rows
    assert [(a.id, a.acknowledged_by, a.kind, a.kind_label, a.title) for a in acknowledged] == [
        (1, "ada", "queue_depth", "Jobs piling up", "Q0 queue: jobs piling up")
    ]
    assert len(read_page(("all", 0)).rows) == PAGE_SIZE


def test_job_detail_shows_the_runs_trace_and_links_it_when_a_trace_ui_is_set(db, monkeypatch):
    with session_scope() as session:
        cid = make_connection(session).id
        traced = make_job(session, cid, JobStatus.COMPLETED, trace_id="ab" * 16).id
        untraced = make_job(session, cid, JobStatus.COMPLETED).id

    def row(job_id: int) -> JobRow:
        with session_scope() as session:
            return JobRow.of(dashboard.job_row(session.get(SyncJob, job_id)))

    assert (row(traced).trace_id, row(traced).trace_link) == ("ab" * 16, "")
    assert (row(untraced).trace_id, row(untraced).trace_link) == ("", "")
    monkeypatch.setenv("HOLOVITALS_TRACE_URL", "http://jaeger:16686/trace/{trace_id}")
    get_settings.cache_clear()
    assert row(traced).trace_link == "http://jaeger:16686/trace/" + "ab" * 16
    assert row(untraced).trace_link == ""
    get_settings.cache_clear()
