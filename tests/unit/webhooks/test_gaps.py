"""Gap detection over the numbers of FHIR subscription notifications (real Redis, the
tests' own database): reordered notifications are no gap once the late ones arrive; a real
loss stays missing and, once caught up, is not reported again."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest

from holovitals_sync.config import get_settings
from holovitals_sync.models.types import utcnow
from holovitals_sync.services.platform.redis import redis_connection
from holovitals_sync.services.webhooks import gaps
from holovitals_sync.services.webhooks.notifications import EventInfo
from tests.conftest import REDIS_TEST_URL

CID = 7


@pytest.fixture(autouse=True)
def _redis(redis_client, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HOLOVITALS_REDIS_URL", REDIS_TEST_URL)
    get_settings.cache_clear()
    redis_connection.cache_clear()
    yield
    redis_connection.cache_clear()


def _note(*counts: int, kind: str = "event-notification") -> list[int]:
    """Store notifications numbered `counts`, one at a time; the holes they report."""
    found = []
    for n in counts:
        info = EventInfo(
            key=f"bundle:{kind}-{n}",
            source="fhir_subscription",
            event_type=kind,
            patient_ref="Patient/pt-1",
            events_since=n,
        )
        for _, missed in gaps.catch_ups([(CID, info)]):
            assert (missed.event_type, missed.patient_ref, missed.events_since) == (
                gaps.MISSED,
                None,
                None,
            )
            found.append(gaps.needed(missed.key))
    return found


def test_in_order_and_repeated_numbers_are_no_gap():
    assert _note(1, 2, 3, 3, 2) == []
    assert _note(3, kind="heartbeat") == []


def test_a_reordered_pair_is_suspected_then_cleared_by_the_late_one():
    assert _note(1, 2, 4) == [4]  # 3 not here (yet): a catch-up is stored, to be decided
    assert gaps.hole_state(CID, 4) is gaps.Hole.OPEN
    assert _note(3) == []  # ... and 3 arrives within the grace period
    assert gaps.hole_state(CID, 4) is gaps.Hole.FILLED
    assert _note(5, 6) == []


def test_a_real_loss_stays_missing_and_is_reported_once():
    assert _note(1, 2, 5) == [5]
    assert _note(6) == []  # still the same hole (3, 4): no second catch-up
    assert gaps.hole_state(CID, 5) is gaps.Hole.OPEN
    gaps.covered(CID, 5)  # the catch-up's sync covers everything up to the highest seen
    assert gaps.hole_state(CID, 5) is gaps.Hole.CAUGHT_UP
    assert _note(7, 8) == []
    assert _note(10) == [10]  # a new hole is news again


def test_catch_ups_decided_in_any_order_tell_lost_from_late():
    """Two catch-ups end their grace in the same instant, in either order: the one whose
    numbers were lost still syncs, even after the other's sync moved the floor past it."""
    assert _note(1, 2, 4) == [4]  # 3 late
    assert _note(3, 5, 7) == [7]  # 6 lost
    assert _note(9, 8) == [9]  # 8 late
    gaps.covered(CID, 7)  # 7 decided first: open, its sync asked for
    assert gaps.hole_state(CID, 4) is gaps.Hole.FILLED  # 3 did arrive
    assert gaps.hole_state(CID, 7) is gaps.Hole.CAUGHT_UP
    assert gaps.hole_state(CID, 9) is gaps.Hole.FILLED


def test_a_later_catch_up_covering_an_earlier_hole_leaves_it_caught_up():
    assert _note(1, 2, 3, 6) == [6]  # 4, 5 lost
    assert _note(8, kind="heartbeat") == [8]  # 7, 8 lost too
    gaps.covered(CID, 8)  # the heartbeat's catch-up decided first
    assert gaps.hole_state(CID, 6) is gaps.Hole.CAUGHT_UP  # joins that sync, not "late"
    assert _note(9) == []


def test_a_heartbeat_ahead_of_notifications_in_flight_is_not_a_loss():
    assert _note(1, 2) == []
    assert _note(4, kind="heartbeat") == [4]
    assert _note(4, kind="heartbeat") == []  # the same news once only
    assert _note(4, 3) == []  # 4 before 3: the hole already reported, then filled
    assert gaps.hole_state(CID, 4) is gaps.Hole.FILLED


def test_concurrent_senders_shuffling_every_window_leave_nothing_missing():
    rng = random.Random(8)
    numbers = list(range(1, 201))
    order: list[int] = [numbers[0]]
    for start in range(1, len(numbers), 5):  # each window of 5 arrives in any order
        window = numbers[start : start + 5]
        rng.shuffle(window)
        order += window
    suspected = _note(*order)
    assert suspected  # the shuffling did open holes for a moment ...
    assert {gaps.hole_state(CID, need) for need in suspected} == {gaps.Hole.FILLED}


def test_grace_left_counts_down_from_arrival():
    now = utcnow()
    assert gaps.grace_left(now, now) == gaps.GRACE_SECONDS
    assert gaps.grace_left(now - timedelta(seconds=gaps.GRACE_SECONDS + 1), now) == 0
    assert gaps.needed("missed:12") == 12 and gaps.needed("bundle:x") is None


def _info(n: int, kind: str = "event-notification") -> EventInfo:
    return EventInfo(
        key=f"bundle:{kind}-{n}",
        source="fhir_subscription",
        event_type=kind,
        patient_ref="Patient/pt-1",
        events_since=n,
    )


def test_a_batch_of_several_connections_finds_what_one_event_at_a_time_finds(redis_client):
    """The receiver notes a batch in one script call per connection; the holes it reports
    are those that noting each event alone, in number order, reports."""
    rng = random.Random(5)
    batches = []
    for _ in range(30):
        batch = [
            (cid, _info(rng.randint(1, 40), rng.choice(["event-notification", "heartbeat"])))
            for cid in (CID, CID + 1)
            for _ in range(rng.randint(1, 6))
        ]
        batches.append(batch)
    together = [sorted((cid, m.key) for cid, m in gaps.catch_ups(b)) for b in batches]
    redis_client.flushdb()
    alone = [
        sorted(
            (cid, m.key)
            for pair in sorted(b, key=lambda p: p[1].events_since or 0)
            for cid, m in gaps.catch_ups([pair])
        )
        for b in batches
    ]
    assert together == alone
    assert any(together), "the batches must show holes for the comparison to mean anything"
