"""One place names the RQ queues (#24): what services enqueue on is what workers serve."""

from __future__ import annotations

from redis import Redis

from holovitals_sync.config import PRIORITIES, QUEUE_FAMILIES, Settings
from holovitals_sync.models import Priority
from holovitals_sync.services.platform.queues import Family, queue_for

UNCONNECTED = Redis()  # a queue object only names its keys; nothing is sent


def test_families_and_priorities_are_the_ones_workers_are_started_for():
    assert tuple(f.value for f in Family) == QUEUE_FAMILIES
    assert tuple(p.value for p in Priority) == PRIORITIES


def test_each_queue_is_one_a_worker_of_its_family_serves():
    settings = Settings()
    for family in Family:
        names = [queue_for(family, p, UNCONNECTED).name for p in Priority]
        assert names == settings.queue_names(family.value)
    assert queue_for(Family.CONFLICTS, connection=UNCONNECTED).name == "conflicts.default"
