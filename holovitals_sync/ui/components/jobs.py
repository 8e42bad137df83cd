"""Pieces shared by the jobs table and the job detail dialog."""

from __future__ import annotations

from collections.abc import Sequence

import reflex as rx

STATUS_COLOURS = {
    "pending": "gray",
    "queued": "blue",
    "running": "amber",
    "completed": "green",
    "failed": "red",
    "cancelled": "gray",
}


def status_badge(status: rx.Var[str], size: str = "2") -> rx.Component:
    colour = rx.match(status, *STATUS_COLOURS.items(), "gray")
    return rx.badge(status, color_scheme=colour, variant="soft", size=size, class_name="job-status")


def progress_cell(job: rx.Var, id_prefix: str = "job-progress") -> rx.Component:
    """The progress bar with its percentage; `data-percent` lets tests read the value."""
    return rx.hstack(
        rx.progress(value=job.percent, max=100, width="4em",
                    color_scheme=rx.cond(job.status == "failed", "red", "teal")),
        rx.text(job.percent, "%", size="1", class_name="job-percent"),
        align="center", spacing="2", class_name="job-progress",
        id=f"{id_prefix}-{job.id}", custom_attrs={"data-percent": job.percent},
    )  # fmt: skip


def counters(job: rx.Var, names: Sequence[str], id_prefix: str = "job") -> rx.Component:
    """The job counters (fetched … conflicts, deleted) as small labelled numbers."""
    return rx.hstack(
        *[rx.vstack(rx.text(name, size="1", color_scheme="gray"),
                    rx.text(getattr(job, name), size="2", weight="medium",
                            class_name=f"counter-{name}"),
                    spacing="0", align="center")
          for name in names],
        spacing="3", id=f"{id_prefix}-counters-{job.id}",
    )  # fmt: skip
