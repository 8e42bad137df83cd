"""The sandbox's ADT sender: each clinic day, the HL7 v2 messages a hospital's interface
engine would send about it, over MLLP, to a configured listener.

A patient whose chart changed gets an update (A08); one with a new encounter an admission
(A01, inpatient) or a registration (A04), and some admissions end in a discharge (A03).
Real feeds are not tidy, so neither is this one: one message is sent twice with the same
control id (a resend after a lost ACK), one pair is sent in the wrong order (the update
before the admission), and on the first clinic day two charts of the population are merged
(the merged one gets `link.replaced-by` and `active: false` at FHIR, then A40).

Messages are built as text and sent with python-hl7's asyncio MLLP streams; the ACKs come
back in the clinic day's answer (codes only).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import hl7
from hl7.mllp import open_hl7_connection

from holovitals_sync.sandbox import terminology as t
from holovitals_sync.sandbox.store import Store

AUTHORITY = f"SANDBOX&{t.MRN_SYSTEM.removeprefix('urn:oid:')}&ISO"
ACK_TIMEOUT = 10.0


def _mrn(patient: dict[str, Any]) -> str:
    return next(
        (
            i.get("value", "")
            for i in patient.get("identifier") or []
            if i.get("system") == t.MRN_SYSTEM
        ),
        "",
    )


def _pid(patient: dict[str, Any]) -> str:
    name = (patient.get("name") or [{}])[0]
    given = (name.get("given") or [""])[0]
    birth = str(patient.get("birthDate", "")).replace("-", "")
    sex = {"male": "M", "female": "F"}.get(patient.get("gender", ""), "U")
    return (
        f"PID|1||{_mrn(patient)}^^^{AUTHORITY}^MR||{name.get('family', '')}^{given}||{birth}|{sex}"
    )


class AdtBuilder:
    """Numbered messages of one clinic day, from one sending application and facility."""

    def __init__(self, application: str, facility: str) -> None:
        self.application, self.facility = application, facility
        self.prefix = f"SBX{uuid.uuid4().hex[:8].upper()}"
        self.count = 0

    def message(
        self,
        trigger: str,
        patient: dict[str, Any],
        *,
        merged: dict[str, Any] | None = None,
        patient_class: str = "I",
    ) -> str:
        self.count += 1
        now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        structure = {"A40": "ADT_A39", "A03": "ADT_A03", "A04": "ADT_A01", "A08": "ADT_A01"}.get(
            trigger, "ADT_A01"
        )
        segments = [
            f"MSH|^~\\&|{self.application}|{self.facility}|HOLOVITALS|HV|{now}||"
            f"ADT^{trigger}^{structure}|{self.prefix}{self.count:04d}|P|2.5.1",
            f"EVN|{trigger}|{now}",
            _pid(patient),
        ]
        if merged is not None:
            segments.append(f"MRG|{_mrn(merged)}^^^{AUTHORITY}^MR")
        else:
            segments.append(f"PV1|1|{patient_class}")
        return "\r".join(segments) + "\r"


def _patients_changed(store: Store, changed: dict[str, list[str]]) -> dict[str, set[str]]:
    """Patient id -> the kinds of change ("encounter" or "chart")."""
    found: dict[str, set[str]] = {}
    for rtype, ids in changed.items():
        for rid in ids:
            record = store.get(rtype, rid)
            if record is None or not record.patient:
                continue
            kind = "encounter" if rtype == "Encounter" else "chart"
            found.setdefault(record.patient.split("/")[-1], set()).add(kind)
    return found


def _merge(store: Store, rng: random.Random) -> tuple[dict, dict] | None:
    """Merge two active charts at FHIR; (survivor, merged) or None when too few."""
    active = [r for r in store.candidates("Patient") if r.resource().get("active", True)]
    if len(active) < 4:
        return None
    survivor, merged = (r.resource() for r in rng.sample(active[-10:], 2))
    merged["active"] = False
    merged["link"] = [{"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}]
    store.update(merged)
    return survivor, merged


def day_messages(
    store: Store, result: dict[str, Any], rng: random.Random, *, builder: AdtBuilder, merge: bool
) -> list[str]:
    """The clinic day's feed, in the (imperfect) order it is sent."""
    messages: list[str] = []
    with store.lock:
        for pid, kinds in sorted(_patients_changed(store, result.get("changed", {})).items()):
            record = store.get("Patient", pid)
            if record is None:
                continue
            patient = record.resource()
            if "encounter" in kinds:
                inpatient = rng.random() < 0.5
                messages.append(
                    builder.message(
                        "A01" if inpatient else "A04",
                        patient,
                        patient_class="I" if inpatient else "O",
                    )
                )
                if inpatient and rng.random() < 0.5:
                    messages.append(builder.message("A03", patient))
            else:
                messages.append(builder.message("A08", patient))
        merged = _merge(store, rng) if merge else None
    if len(messages) >= 2:  # an update overtaking the admission it follows
        messages.insert(0, builder.message("A08", _patient_of(store, messages[0])))
        messages[0], messages[1] = messages[1], messages[0]
    if messages:  # an engine resending after a lost ACK: same control id
        messages.append(messages[rng.randrange(len(messages))])
    if merged is not None:
        messages.append(builder.message("A40", merged[0], merged=merged[1]))
    return messages


def _patient_of(store: Store, message: str) -> dict[str, Any]:
    mrn = message.split("\rPID|1||", 1)[1].split("^", 1)[0]
    for record in store.candidates("Patient"):
        patient = record.resource()
        if _mrn(patient) == mrn:
            return patient
    return {}


async def send(target: str, messages: list[str]) -> dict[str, Any]:
    """Send in order on one connection, each after the previous one's ACK; the codes."""
    host, port = target.rsplit(":", 1)
    codes: Counter[str] = Counter()
    reader, writer = await open_hl7_connection(host.strip("[]"), int(port))
    try:
        for message in messages:
            writer.writeblock(message.encode("latin-1"))
            await writer.drain()
            ack = await asyncio.wait_for(reader.readmessage(), ACK_TIMEOUT)
            codes[str(ack.segment("MSA")(1))] += 1
    finally:
        writer.close()
    return {"sent": len(messages), "acks": dict(codes)}


async def send_clinic_day(
    store: Store,
    result: dict[str, Any],
    rng: random.Random,
    *,
    target: str,
    application: str,
    facility: str,
    merge: bool,
) -> dict[str, Any]:
    """Build and send the day's messages; the outcome (an error in words, never raised)."""
    messages = day_messages(
        store, result, rng, builder=AdtBuilder(application, facility), merge=merge
    )
    try:
        return await send(target, messages)
    except (OSError, TimeoutError, hl7.ParseException) as exc:
        return {
            "sent": 0,
            "error": f"{type(exc).__name__}: the listener at {target} did not take the feed",
        }
