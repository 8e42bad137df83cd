"""From a feed's patient identifiers (PID-3) to the EHR's FHIR Patient id.

Three places are asked, cheapest first: the identifiers of the patients HoloVitals already
holds for the connection (no network, and the only place a merged-away chart is still
known by its old MRN), a cache in Redis, then the EHR's FHIR identifier search. A patient
the EHR merged into another (`patient_merge`) resolves to its survivor.

The cache's keys are keyed hashes (HMAC with the secret key) of the identifier: an MRN is PHI
and stays out of Redis; its value is the FHIR id, which the rest of the product stores too.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from sqlmodel import Session, select

from ...adapters import adapter_for
from ...adapters.identifiers import find_patients
from ...config import get_settings, secret_key
from ...models import EHRConnection, PatientMerge, RecordIdentifier, SyncedRecord
from ..connection_spec import connection_spec
from ..platform.redis import redis_connection
from .events import Identifier

CACHE_KEY = "hl7:patient:{connection_id}:{digest}"


class PatientNotFound(LookupError):
    """No patient of the EHR carries any of the identifiers (not retried)."""


class NoUsableIdentifier(ValueError):
    """No identifier names an assigning authority this feed knows (not retried)."""


def _digest(connection_id: int, identifier: Identifier) -> str:
    key = secret_key(get_settings())
    text = f"{connection_id}|{identifier.system}|{identifier.value}".encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()[:32]


def held(session: Session, connection_id: int, identifier: Identifier) -> str | None:
    """The Patient HoloVitals holds with this identifier (None: none held)."""
    row = session.exec(
        select(SyncedRecord.remote_id)
        .join(RecordIdentifier, RecordIdentifier.record_id == SyncedRecord.id)
        .where(
            RecordIdentifier.connection_id == connection_id,
            RecordIdentifier.resource_type == "Patient",
            RecordIdentifier.system == identifier.system,
            RecordIdentifier.value == identifier.value,
        )
        .order_by(SyncedRecord.id)
        .limit(1)
    ).first()
    return str(row) if row else None


def survivor_of(session: Session, connection_id: int, patient_id: str) -> str:
    """The patient itself, or the one it was merged into (followed along a chain)."""
    seen = {patient_id}
    while True:
        nxt = session.exec(
            select(PatientMerge.survivor_patient_id).where(
                PatientMerge.connection_id == connection_id,
                PatientMerge.merged_patient_id == patient_id,
            )
        ).first()
        if nxt is None or nxt in seen:
            return patient_id
        seen.add(nxt)
        patient_id = nxt


def _cached(connection_id: int, identifier: Identifier) -> str | None:
    raw = redis_connection().get(
        CACHE_KEY.format(connection_id=connection_id, digest=_digest(connection_id, identifier))
    )
    return raw.decode() if raw else None


def _remember(connection_id: int, identifier: Identifier, patient_id: str) -> None:
    ttl = get_settings().mllp_identifier_cache_seconds
    if ttl:
        redis_connection().set(
            CACHE_KEY.format(
                connection_id=connection_id, digest=_digest(connection_id, identifier)
            ),
            patient_id,
            ex=ttl,
        )


def resolve(
    session: Session,
    connection: EHRConnection,
    identifiers: Sequence[Identifier],
    *,
    merged_away: bool = False,
) -> str:
    """The EHR's Patient id for a message's identifiers.

    `merged_away`: the chart an A40 merged (MRG-1): taken as it is (not followed to its
    survivor), and at the EHR only a patient marked `replaced-by` is that chart.

    Raises:
        NoUsableIdentifier: no identifier has a known system.
        PatientNotFound: none of them names a patient.
        FhirError and friends: the EHR's search failed (passing: retried later).
    """
    usable = [i for i in identifiers if i.system]
    if not usable:
        raise NoUsableIdentifier("no PID-3 identifier of a known assigning authority")
    cid = int(connection.id or 0)
    for identifier in usable:
        found = held(session, cid, identifier) or (
            None if merged_away else _cached(cid, identifier)
        )
        if found:
            return found if merged_away else survivor_of(session, cid, found)
    with adapter_for(connection_spec(connection)) as adapter:
        for identifier in usable:
            ids = find_patients(
                adapter, system=identifier.system, value=identifier.value, merged_away=merged_away
            )
            if len(ids) == 1:
                if merged_away:
                    return ids[0]
                _remember(cid, identifier, ids[0])
                return survivor_of(session, cid, ids[0])
    raise PatientNotFound("no single patient at the EHR carries the message's identifiers")
