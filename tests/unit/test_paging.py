"""Keyset paging's cursor trail (#24, point 5: five copies of it had grown in the UI states)."""

from __future__ import annotations

from holovitals_sync.ui.views.paging import back_one, turn


def test_next_and_previous_walk_the_trail_and_stop_at_either_end():
    after, back = turn(0, [], 40, forward=True)
    assert (after, back) == (40, [0])
    after, back = turn(after, back, 80, forward=True)
    assert (after, back) == (80, [0, 40])
    assert turn(after, back, 0, forward=True) == (80, [0, 40])  # the last page: stays
    after, back = turn(after, back, 0, forward=False)
    assert (after, back) == (40, [0])
    after, back = turn(after, back, 80, forward=False)
    assert (after, back) == (0, [])
    assert turn(0, [], 40, forward=False) == (0, [])  # the first page: stays


def test_back_one_goes_to_the_page_before_or_the_first():
    assert back_one([0, 40]) == (40, [0])
    assert back_one([]) == (0, [])
