"""Keyset paging as the tables page: the cursor on screen and the trail of earlier ones.

The server returns the cursor of the next page (0: none); "Previous" needs the cursors of the
pages before, which only the tab knows. Every paged table of the dashboard steps through here.
"""

from __future__ import annotations


def turn(after: int, back: list[int], next_cursor: int, forward: bool) -> tuple[int, list[int]]:
    """The cursor to read and the trail after "Next" (forward) or "Previous"; unchanged at
    either end."""
    if forward and next_cursor:
        return next_cursor, [*back, after]
    if not forward and back:
        return back[-1], back[:-1]
    return after, back


def back_one(back: list[int]) -> tuple[int, list[int]]:
    """The page before (the first page when there is none): where to go when the page on
    screen is about to empty."""
    return (back[-1], back[:-1]) if back else (0, [])
