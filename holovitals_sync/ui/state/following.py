"""What live updates (live.py) may call on the states whose screens they keep fresh.

A tab's live watcher follows Redis and, when something changed, re-reads or patches what the
tab shows. It does so only through the hooks declared here, so a state says what it offers
and the watcher does not depend on how each state keeps its rows:

- `FollowedList`: a state whose on-screen list is re-read whole. `_query()` is the hashable
  key of what it shows (filters, cursors, offset); the entry's module-level `read(query)`
  reads it again in a thread, shared by every tab asking the same (ui/shared_reads.py);
  `_show(found)` puts that read on screen. `LISTS` names each such list by what announces
  its changes; `JOB_ROWS` is the jobs list, re-read when a job it does not show appears
  (or events may have been missed).
- `JobRows` and `JobDialog`: the jobs list and the job detail dialog, which job events
  patch in place rather than re-read.

Why every hook starts with "_": Reflex makes each method of an `rx.State` whose name does
not start with "_" an event handler the browser may call, with arguments of its choosing.
Putting a read on screen or applying job events is the watcher's job, with data it read, so
these stay private to Reflex; the protocols are what makes them a contract. mypy checks the
states against them here (the `Followed` entries) and where live.py takes a state
(`JobRows`, `JobDialog`), so a hook renamed or changed on one side fails the type check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar, cast

import reflex as rx

from ...services import changes
from . import alerts, conflicts, jobs, webhooks

JobEvents = dict[int, dict[str, Any]]  # the newest event of each job, by job id

# An alert event is not a change notice (alerts have their own channel, ui/live_hub.py), but
# re-reading the alerts list is the same work, so it takes a key beside the change topics.
ALERTS = "alerts"

Q_co = TypeVar("Q_co", bound=Hashable, covariant=True)
F_contra = TypeVar("F_contra", contravariant=True)
Q = TypeVar("Q", bound=Hashable)
F = TypeVar("F")


class FollowedList(Protocol[Q_co, F_contra]):
    """A state whose list on screen live updates re-read whole."""

    def _query(self) -> Q_co:
        """What the list on screen shows (filters, cursors, offset): the read's argument,
        and what tells that the tab moved on while it ran."""
        ...

    def _show(self, found: F_contra) -> None:
        """Put a fresh read on screen."""
        ...


class JobRows(Protocol):
    """The jobs list, patched from job events (it is a `FollowedList` too: `JOB_ROWS`)."""

    def _apply_events(self, events: JobEvents) -> None:
        """Patch the rows on screen that these events are about."""
        ...

    def _showing_newest(self) -> bool:
        """Whether a new job would appear on the page on screen."""
        ...

    def _on_screen(self) -> set[int]:
        """The ids of the jobs on screen."""
        ...


class JobDialog(Protocol):
    """The job detail dialog, patched from its job's events."""

    open: bool

    def _apply_events(self, events: JobEvents, changed: bool) -> bool:
        """Patch the open job; True when it should be re-read (its timeline moved)."""
        ...

    async def _reload(self) -> None:
        """Re-read the open job."""
        ...


@dataclasses.dataclass(frozen=True)
class Followed(Generic[Q, F]):
    """One list live updates re-read: its state and the module-level read that fills it."""

    state: type[FollowedList[Q, F]]
    read: Callable[[Q], F]  # module-level: shared reads are keyed by (read, query)

    def __post_init__(self) -> None:
        # What the protocol cannot say: only an rx.State has an instance per tab.
        if not issubclass(self.state, rx.State):
            raise TypeError(f"{self.state.__name__} is not an rx.State")

    async def on(self, tab: rx.State) -> FollowedList[Q, F]:
        """This tab's instance of the state (inside `async with tab`)."""
        found = await tab.get_state(cast(type[rx.State], self.state))  # see __post_init__
        return cast(FollowedList[Q, F], found)


# Keyed by the change topic (services/changes.py) or `ALERTS`; live.py re-reads in this order.
LISTS: dict[str, Followed[Any, Any]] = {
    ALERTS: Followed(alerts.AlertsState, alerts.read_page),
    changes.CONFLICTS: Followed(conflicts.ConflictsState, conflicts.read_page),
    changes.WEBHOOKS: Followed(webhooks.WebhooksState, webhooks.read_lists),
}
JOB_ROWS = Followed(jobs.JobsState, jobs.read_page)
