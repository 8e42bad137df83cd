"""The append-only, hash-chained audit log.

Each entry's hash covers its own content and the previous entry's hash, so editing or
deleting any row breaks the chain from that row on. Details hold ids and settings, never PHI.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, select

from ..models import ActorKind, AuditLog
from ..models.types import utcnow

GENESIS = "0" * 64
# PostgreSQL advisory lock key that serialises writers of the chain ("HVAUDIT" in ASCII).
_CHAIN_LOCK = 0x4856415544495400


@dataclass(frozen=True)
class Actor:
    """Who did something: a signed-in user, an API token, or the system itself."""

    kind: ActorKind
    name: str
    ip: str | None = None

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(ActorKind.SYSTEM, name)


def _digest(entry: AuditLog) -> str:
    content = {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "actor_kind": entry.actor_kind.value,
        "actor": entry.actor,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "details": entry.details,
        "ip": entry.ip,
        "outcome": entry.outcome,
        "prev_hash": entry.prev_hash,
    }
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: object | None = None,
    details: dict[str, Any] | None = None,
    outcome: str = "success",
) -> AuditLog:
    """Append one entry in the caller's transaction (it commits with the change it records).

    On PostgreSQL a transaction-scoped advisory lock makes concurrent writers (workers
    starting jobs for different patients, say) take their turn instead of both reading the
    same last entry; it is released when the caller's transaction ends. On SQLite writers
    are serialised by the database lock. Either way the unique `seq` stays the backstop: two
    writers racing for one position fail rather than fork the chain.
    """
    _lock_chain(session)
    last = session.exec(select(AuditLog).order_by(AuditLog.seq.desc()).limit(1)).first()
    entry = AuditLog(
        seq=(last.seq + 1) if last else 1,
        at=utcnow(),
        actor_kind=actor.kind,
        actor=actor.name,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=details or {},
        ip=actor.ip,
        outcome=outcome,
        prev_hash=last.entry_hash if last else GENESIS,
        entry_hash="",
    )
    entry.entry_hash = _digest(entry)
    session.add(entry)
    session.flush()
    return entry


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(session: Session, batch: int = 1000) -> ChainReport:
    """Walk the whole log in order and report the first entry that breaks the chain."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = session.exec(
            select(AuditLog).where(AuditLog.seq > last_seq).order_by(AuditLog.seq).limit(batch)
        ).all()
        if not rows:
            return ChainReport(ok=True, entries=count)
        for row in rows:
            problem = None
            if row.seq != expected_seq:
                problem = f"entry {expected_seq} is missing"
            elif row.prev_hash != prev_hash:
                problem = "previous-hash link broken"
            elif _digest(row) != row.entry_hash:
                problem = "content does not match its hash"
            if problem:
                return ChainReport(False, count, first_bad_seq=expected_seq, problem=problem)
            prev_hash, expected_seq, count = row.entry_hash, row.seq + 1, count + 1
            last_seq = row.seq


def count_entries(session: Session) -> int:
    return session.exec(select(sa.func.count()).select_from(AuditLog)).one()
