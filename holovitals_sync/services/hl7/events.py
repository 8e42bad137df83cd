"""What a stored ADT message asks for: its event, and the patients it names (PID-3, MRG-1).

Parsed whole with python-hl7 on the worker (the listener read only the MSH). The patient is
named by identifiers (CX: value, assigning authority); each becomes a FHIR identifier
system: an authority that names itself by OID or URI (HD universal id) gives that system,
others are looked up in the feed's `identifier_systems` by namespace id, and an identifier
of an authority neither knows is not used (a bare MRN could match another hospital's).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

import hl7


class Action(StrEnum):
    SYNC = "sync"  # the patient's record changed (or an admission/discharge)
    CANCELLATION = "cancellation"  # A11/A13: recorded; the next sync reads the state
    MERGE = "merge"  # A40: the MRG patient merged into the PID patient
    NONE = "none"  # an ADT event nothing here acts on


ACTIONS: dict[str, Action] = {
    **dict.fromkeys(("A01", "A03", "A04", "A08", "A28", "A31"), Action.SYNC),
    **dict.fromkeys(("A11", "A13"), Action.CANCELLATION),
    "A40": Action.MERGE,
}
CHARSETS = {"UNICODE UTF-8": "utf-8", "UNICODE": "utf-8", "8859/1": "latin-1", "ASCII": "ascii"}


class Identifier(NamedTuple):
    system: str | None  # the FHIR system; None when the authority is not known
    value: str
    authority: str  # the namespace id (or universal id), for the outcome's wording


class AdtEvent(NamedTuple):
    trigger: str
    action: Action
    patient: list[Identifier]  # PID-3
    merged: list[Identifier]  # MRG-1 (A40)


class UnreadableMessage(ValueError):
    """The stored message cannot be parsed (a permanent failure; the reason has no content)."""


def _decode(body: bytes) -> str:
    """The message text in the character set MSH-18 names (UTF-8, else Latin-1)."""
    msh = body.split(b"\r", 1)[0].decode("latin-1")
    fields = msh.split(msh[3]) if len(msh) > 3 else []
    charset = fields[17].strip().upper() if len(fields) > 17 else ""
    try:
        return body.decode(CHARSETS.get(charset, "utf-8"))
    except UnicodeDecodeError:
        return body.decode("latin-1")


def _at(message: hl7.Message, *path: int | str) -> str:
    try:
        return str(message.extract_field(*path)).strip()
    except (IndexError, KeyError):
        return ""


def _repetitions(message: hl7.Message, segment: str, field: int) -> int:
    try:
        value = message.segment(segment)(field)
    except (IndexError, KeyError):
        return 0
    if len(value) and isinstance(value[0], hl7.Repetition):
        return len(value)
    return 1 if str(value) else 0


def system_for(namespace: str, universal: str, kind: str, systems: dict[str, str]) -> str | None:
    """The FHIR system of an assigning authority (HD), or None when unknown."""
    kind = kind.upper()
    if universal and kind == "ISO":
        return f"urn:oid:{universal}"
    if universal and kind == "UUID":
        return f"urn:uuid:{universal.lower()}"
    if universal and kind in ("URI", "URL"):
        return universal
    return systems.get(namespace) or (systems.get(universal) if universal else None)


def identifiers(
    message: hl7.Message, segment: str, field: int, systems: dict[str, str]
) -> list[Identifier]:
    """Every CX repetition of a field, each with its FHIR system where it is known."""
    found = []
    for rep in range(1, _repetitions(message, segment, field) + 1):
        value = _at(message, segment, 1, field, rep, 1, 1)
        if not value:
            continue
        namespace = _at(message, segment, 1, field, rep, 4, 1)
        universal = _at(message, segment, 1, field, rep, 4, 2)
        kind = _at(message, segment, 1, field, rep, 4, 3)
        found.append(
            Identifier(
                system_for(namespace, universal, kind, systems), value, namespace or universal
            )
        )
    return found


def read_event(body: bytes, systems: dict[str, str]) -> AdtEvent:
    """The message's event and the patients it names."""
    try:
        message = hl7.parse(_decode(body))
        trigger = _at(message, "MSH", 1, 9, 1, 2, 1) or _at(message, "EVN", 1, 1, 1, 1, 1)
    except Exception:  # noqa: BLE001 - python-hl7 raises assorted errors on broken input
        raise UnreadableMessage("the message cannot be parsed") from None
    action = ACTIONS.get(trigger, Action.NONE)
    patient = identifiers(message, "PID", 3, systems)
    merged = identifiers(message, "MRG", 1, systems) if action is Action.MERGE else []
    return AdtEvent(trigger, action, patient, merged)
