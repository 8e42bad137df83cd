"""A job's counters are named once (#24, point 5: they were written out four times)."""

from __future__ import annotations

import dataclasses

from holovitals_sync.api.jobs import JobOut
from holovitals_sync.models import JOB_COUNTERS, SyncJob
from holovitals_sync.services.orchestration import events, lifecycle
from holovitals_sync.ui.state import jobs


def test_every_counter_is_a_column_an_api_field_and_an_event_field():
    columns = set(SyncJob.model_fields)
    assert set(JOB_COUNTERS) <= columns
    assert set(JOB_COUNTERS) <= set(JobOut.model_fields)
    assert events.COUNTERS == lifecycle.COUNTERS == JOB_COUNTERS


def test_the_dashboard_rows_carry_every_counter_they_show():
    fields = {f.name for f in dataclasses.fields(jobs.JobRow)}
    assert set(jobs.COUNTERS) <= fields
