"""The dashboard's one time formatter (#24: six formatters had grown apart)."""

from __future__ import annotations

from datetime import datetime, timedelta

from holovitals_sync.ui.views import connections, records, times

AT = datetime(2026, 12, 6, 9, 41, 7)


def test_when_prints_utc_to_the_second_or_minute_with_or_without_the_zone():
    assert times.when(AT) == "2026-12-06 09:41:07"
    assert times.when(AT, precision="minute") == "2026-12-06 09:41"
    assert times.when(AT, zone=True) == "2026-12-06 09:41:07 UTC"
    assert times.when(None) == "—" and times.when(None, empty="never") == "never"


def test_the_pages_use_it_as_their_columns_need():
    assert records.when(AT) == "2026-12-06 09:41"  # a column headed "(UTC)"
    assert connections.when(AT) == "2026-12-06 09:41 UTC"  # text standing alone


def test_clock_leaves_out_todays_date():
    assert times.clock(AT, now=AT + timedelta(hours=2)) == "09:41:07"
    assert times.clock(AT, now=AT + timedelta(days=1)) == "2026-12-06 09:41"
    assert times.clock(None) == "—"
