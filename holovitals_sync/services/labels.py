"""Words for people: what the dashboard shows for the engine's machine values.

Strategies, conflict kinds, alert subjects, validation messages and audit details are
stored and spoken in machine terms (`use_remote`, `stale_write`, `connection:1:resource:
failures`, pydantic's "String should match pattern"); a hospital administrator reads the
words here. The dashboard keeps the machine value in a tooltip where support needs it, and
the API keeps speaking machine terms. Every label lives in this one module, so a wording is
changed once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# -- conflicts -----------------------------------------------------------------------------

STRATEGIES = {
    "use_local": "Keep HoloVitals' version",
    "use_remote": "Take the EHR's version",
    "merge": "Choose per element",
    "manual": "Type the values to keep",
    "ignore": "Keep HoloVitals' version, stop flagging",
}
STRATEGY_HELP = {
    "use_local": "HoloVitals' copy stays and is written to the EHR.",
    "use_remote": "The EHR's copy replaces HoloVitals' copy.",
    "merge": "For each conflicting element, pick HoloVitals' or the EHR's value.",
    "manual": "Type the value to keep for each conflicting element.",
    "ignore": "HoloVitals' copy stays; this EHR version is no longer flagged.",
}
CONFLICT_KINDS = {
    "field": "Both sides changed the same element",
    "stale_write": "The EHR changed the record after we read it",
    "duplicate": "Two EHR records share an identifier",
}
SIDES = {"local": "HoloVitals", "remote": "EHR"}
# A resolution's write to the EHR (services.conflicts.writeback), as the Conflicts tab shows it.
WRITE_BACKS = {
    "queued": "Writing to the EHR…",
    "written": "Written to the EHR",
    "stale": "The EHR changed it again: a new conflict is open",
    "stale_merged": "The EHR changed it again: merged, written by the next outbound sync",
    "refused": "This EHR takes no such write: kept in HoloVitals",
    "failed": "Not written to the EHR: the next outbound sync tries again",
    "superseded": "Not written: a newer conflict or a delete holds the record",
    "settled": "Written to the EHR by an outbound sync",
}

# -- alerts --------------------------------------------------------------------------------

ALERT_KINDS = {
    "queue_depth": "Jobs piling up",
    "job_failures": "Repeated failures",
    "job_slow": "Job running long",
    "subscription_disabled": "Webhook switched off",
    "conflict_backlog": "Conflict backlog",
    "feed_silent": "HL7 feed silent",
    "hl7_held": "HL7 messages held",
}
_QUEUE = re.compile(r"queue:(?P<family>[\w-]+)")
_FAILURES = re.compile(r"connection:(?P<id>\d+):(?P<job_type>\w+):failures")
_BACKLOG = re.compile(r"connection:(?P<id>\d+):conflicts")
_FEED = re.compile(r"connection:(?P<id>\d+):feed")
_HELD = re.compile(r"connection:(?P<id>\d+):hl7-held")
_JOB = re.compile(r"job:(?P<id>\d+)")
_SUBSCRIPTION = re.compile(r"subscription:(?P<id>\d+)")
# In stored alert messages: "connection 3", "webhook subscription 7".
_CONNECTION_IN_TEXT = re.compile(r"\bconnection (\d+)\b")
_SUBSCRIPTION_IN_TEXT = re.compile(r"\bwebhook subscription (\d+)\b")


def connection_name(connection_id: int | str, names: Mapping[int, str]) -> str:
    """A connection as people know it: its name (its number when it is gone)."""
    found = names.get(int(connection_id))
    return found if found else f"connection {connection_id} (deleted)"


def alert_title(
    subject: str, connections: Mapping[int, str], subscriptions: Mapping[int, str]
) -> str:
    """An alert's subject in words, e.g. "Sandbox EHR (demo): repeated failures of resource
    syncs" for `connection:1:resource:failures`."""
    if m := _FAILURES.fullmatch(subject):
        name = connection_name(m["id"], connections)
        return f"{name}: repeated failures of {m['job_type']} syncs"
    if m := _BACKLOG.fullmatch(subject):
        return f"{connection_name(m['id'], connections)}: high-severity conflicts waiting"
    if m := _FEED.fullmatch(subject):
        return f"{connection_name(m['id'], connections)}: HL7 ADT feed silent"
    if m := _HELD.fullmatch(subject):
        return f"{connection_name(m['id'], connections)}: HL7 ADT messages held"
    if m := _QUEUE.fullmatch(subject):
        return f"{m['family'].capitalize()} queue: jobs piling up"
    if m := _JOB.fullmatch(subject):
        return f"Sync job #{m['id']} is running long"
    if m := _SUBSCRIPTION.fullmatch(subject):
        name = subscriptions.get(int(m["id"]))
        return (
            f"Webhook subscription “{name}” switched off"
            if name
            else f"Webhook subscription {m['id']} switched off"
        )
    return subject


def with_names(text: str, connections: Mapping[int, str], subscriptions: Mapping[int, str]) -> str:
    """A stored message with connections and subscriptions called by their names."""
    text = _CONNECTION_IN_TEXT.sub(lambda m: connection_name(m[1], connections), text)
    return _SUBSCRIPTION_IN_TEXT.sub(
        lambda m: (
            f"webhook subscription “{subscriptions[int(m[1])]}”"
            if int(m[1]) in subscriptions
            else m[0]
        ),
        text,
    )


def plural(count: int, one: str, many: str | None = None) -> str:
    """ "1 connection", "2 connections"."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


# -- sync jobs -----------------------------------------------------------------------------

# What the job detail's timeline says for an audited action on a job (None: not shown, the
# job's own "Requested" step already says who asked for it).
JOB_ACTIONS: dict[str, str | None] = {
    "start": None,
    "cancel": "Cancelled",
    "retry": "Retried",
    "replay": "Replayed from the dead-letter list",
}


def records_summary(finished: bool, failed: bool) -> str:
    """The job detail's line above the records it wrote, when it wrote none."""
    if not finished:
        return "No records written yet"
    if failed:
        return "No records written before the job stopped"
    return "0 records written: nothing changed at the EHR"


# -- records -------------------------------------------------------------------------------

# A record's sync and delete state on the Records page; the machine name stays its tooltip.
RECORD_STATES = {
    "invalid": "Flagged invalid",
    "reference_missing": "Patient not held",
    "dirty": "Local change to send",
    "local_deleted": "Delete pending",
    "deleted": "Deleted at the EHR",
    "conflicts": "Open conflicts",
}
# The Records page's tri-state filters, headed by what they filter.
RECORD_FILTERS = {"invalid": "Validity", "dirty": "Local changes", "deleted": "Deleted"}


# -- audit ---------------------------------------------------------------------------------

TARGET_TYPES = {
    "connection": "connection",
    "sync_job": "sync job",
    "webhook_subscription": "webhook subscription",
    "webhook_delivery": "webhook delivery",
    "user": "user",
    "conflict": "conflict",
    "alert": "alert",
    "api_token": "API token",
    "transformation_rule": "transformation rule",
}


def target_label(
    target_type: str | None, target_id: str | None, names: Mapping[tuple[str, str], str]
) -> str:
    """An audit target in words: a name where one is known, e.g. "connection Sandbox EHR"."""
    if not target_type and not target_id:
        return "—"
    kind = TARGET_TYPES.get(target_type or "", (target_type or "").replace("_", " "))
    name = names.get((target_type or "", target_id or ""))
    if name:
        return f"{kind} “{name}”"
    if target_type == "sync_job" and target_id:
        return f"{kind} #{target_id}"
    return f"{kind} {target_id or ''}".strip()


def details_text(details: Mapping[str, Any] | None) -> str:
    """An audit entry's details as "key: value" pairs; a dash when there are none."""
    if not details:
        return "—"
    return "; ".join(
        f"{key.replace('_', ' ')}: {_value_text(value)}" for key, value in sorted(details.items())
    )


def _value_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_value_text(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value_text(v)}" for k, v in sorted(value.items())) or "none"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# -- form messages -------------------------------------------------------------------------

_URL_PATTERNS = ("^https?://",)


def field_message(error: Mapping[str, Any]) -> str:
    """One pydantic error (`ValidationError.errors()` item) as a person would say it."""
    kind, ctx = str(error.get("type", "")), dict(error.get("ctx") or {})
    message = _message_for(kind, ctx)
    if message is None:
        message = str(error.get("msg", "")).removeprefix("Value error, ")
    return sentence(message, end="")


def _message_for(kind: str, ctx: dict[str, Any]) -> str | None:  # noqa: PLR0911 (a table)
    if kind == "string_pattern_mismatch":
        if str(ctx.get("pattern", "")) in _URL_PATTERNS:
            return "Enter a URL starting with http:// or https://"
        return "This is not in the expected form"
    if kind in ("url_parsing", "url_scheme", "url_type"):
        return "Enter a URL starting with http:// or https://"
    if kind == "string_too_long":
        return f"At most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        least = int(ctx.get("min_length", 1))
        return "Required" if least <= 1 else f"At least {least} characters"
    if kind == "too_long":
        return f"At most {ctx.get('max_length')} entries"
    if kind == "too_short":
        return f"Choose at least {ctx.get('min_length')}"
    if kind == "missing":
        return "Required"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "Enter a whole number"
    if kind in ("float_parsing", "float_type", "decimal_parsing"):
        return "Enter a number"
    bounds = {
        "greater_than_equal": ("At least", "ge"),
        "greater_than": ("More than", "gt"),
        "less_than_equal": ("At most", "le"),
        "less_than": ("Less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"{words} {ctx.get(key)}"
    if kind in ("enum", "literal_error"):
        return f"Choose one of {ctx.get('expected')}"
    return None


def sentence(text: str, end: str = ".") -> str:
    """One style for what the dashboard says: a capital first letter, `end` at the end."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if not end or text.endswith((".", "!", "?")) else text + end
