"""A job's counters are named once (#24, point 5: they were written out four times)."""

from __future__ import annotations

from holovitals_sync.api.jobs import JobOut
from holovitals_sync.models import JOB_COUNTERS, SyncJob
from holovitals_sync.services.orchestration import children, events, lifecycle
from holovitals_sync.ui.state import jobs


def test_every_counter_is_a_column_an_api_field_and_an_event_field():
    columns = set(SyncJob.model_fields)
    assert set(JOB_COUNTERS) <= columns
    assert set(JOB_COUNTERS) <= set(JobOut.model_fields)
    assert events.COUNTERS == lifecycle.COUNTERS == JOB_COUNTERS


def test_the_dashboard_and_split_parents_take_theirs_from_the_same_list():
    assert tuple(c for c in JOB_COUNTERS if c != "written") == jobs.COUNTERS
    assert set(children.ADDED) == set(JOB_COUNTERS) - {"written"}
