"""The append-only, hash-chained audit log.

Each entry's hash covers its own content and the previous entry's hash, so editing or
deleting any row breaks the chain from that row on. The hash is an HMAC keyed with the audit
key (`config.audit_key`), which the database does not hold: someone who can write to the
database cannot recompute a chain they edited. The chain's latest position (sequence number
and hash, itself keyed) is kept in `audit_anchor`, outside the log, so removing the last
entries, or all of them, is caught too. Details hold ids and settings, never PHI.

What it does not prove: a database restored whole from an older backup (log and anchor
consistent with each other, both keyed) verifies; so does anything done by someone holding
the audit key. Keep the key outside the database's backups and access.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, select

from ..config import audit_key, get_settings
from ..models import ActorKind, AuditAnchor, AuditLog
from ..models.types import utcnow

GENESIS = "0" * 64
ANCHOR_ID = 1


@dataclass(frozen=True)
class Actor:
    """Who did something: a signed-in user, an API token, or the system itself."""

    kind: ActorKind
    name: str
    ip: str | None = None

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(ActorKind.SYSTEM, name)


@lru_cache(maxsize=4)
def _key(_data_dir: str, _configured: str | None) -> bytes:
    return audit_key(get_settings())


def chain_key() -> bytes:
    """The audit key of this process's settings (read once per data directory and key)."""
    settings = get_settings()
    return _key(str(settings.data_dir), settings.audit_key)


def _digest(entry: AuditLog, key: bytes | None) -> str:
    """The entry's hash: keyed (HMAC-SHA256) from the anchor's `keyed_from` on, plain
    SHA-256 for entries written before the chain was keyed."""
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
    text = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    if key is None:
        return hashlib.sha256(text).hexdigest()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def _anchor_mac(seq: int, entry_hash: str, key: bytes) -> str:
    return hmac.new(key, f"{seq}:{entry_hash}".encode(), hashlib.sha256).hexdigest()


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

    The anchor row is claimed first, with a write: on PostgreSQL its row lock makes
    concurrent writers take their turn; on SQLite the write takes the database's write lock
    before the last position is read (reading first let two writers take one position:
    "UNIQUE constraint failed: audit_log.seq", and the action failed). Either way the lock
    is held until the caller's transaction ends, and the unique `seq` stays the backstop.
    """
    table = AuditAnchor.__table__
    now = utcnow()
    claimed = session.execute(
        sa.update(table)
        .where(table.c.id == ANCHOR_ID)
        .values(updated_at=now)
        .returning(table.c.seq, table.c.entry_hash, table.c.keyed_from)
    ).first()
    if claimed is None:
        raise RuntimeError("audit_anchor is missing: run `holovitals-sync migrate`")
    last_seq, last_hash, keyed_from = claimed
    key = chain_key()
    entry = AuditLog(
        seq=last_seq + 1,
        at=now,
        actor_kind=actor.kind,
        actor=actor.name,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=details or {},
        ip=actor.ip,
        outcome=outcome,
        prev_hash=last_hash,
        entry_hash="",
    )
    entry.entry_hash = _digest(entry, key if entry.seq >= keyed_from else None)
    session.add(entry)
    session.flush()
    session.execute(
        sa.update(table)
        .where(table.c.id == ANCHOR_ID)
        .values(
            seq=entry.seq,
            entry_hash=entry.entry_hash,
            mac=_anchor_mac(entry.seq, entry.entry_hash, key),
        )
    )
    return entry


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(session: Session, batch: int = 1000) -> ChainReport:
    """Walk the whole log in order, then check it ends where the (keyed) anchor says."""
    anchor = session.get(AuditAnchor, ANCHOR_ID)
    if anchor is None:
        return ChainReport(False, 0, first_bad_seq=1, problem="the anchor is missing")
    key = chain_key()
    prev_hash, expected_seq, count = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = session.exec(
            select(AuditLog).where(AuditLog.seq > last_seq).order_by(AuditLog.seq).limit(batch)
        ).all()
        if not rows:
            return _check_anchor(anchor, count, expected_seq - 1, prev_hash, key)
        for row in rows:
            problem = _broken(
                row, expected_seq, prev_hash, key if row.seq >= anchor.keyed_from else None
            )
            if problem:
                return ChainReport(False, count, first_bad_seq=expected_seq, problem=problem)
            prev_hash, expected_seq, count = row.entry_hash, row.seq + 1, count + 1
            last_seq = row.seq


def _broken(row: AuditLog, expected_seq: int, prev_hash: str, key: bytes | None) -> str | None:
    if row.seq != expected_seq:
        return f"entry {expected_seq} is missing"
    if row.prev_hash != prev_hash:
        return "previous-hash link broken"
    if _digest(row, key) != row.entry_hash:
        return "content does not match its hash"
    return None


def _check_anchor(
    anchor: AuditAnchor, count: int, last_seq: int, last_hash: str, key: bytes
) -> ChainReport:
    """The log must end exactly where the anchor says it does."""
    unkeyed = anchor.mac is None and anchor.seq >= anchor.keyed_from  # keyed ones exist
    if unkeyed or (
        anchor.mac is not None
        and not hmac.compare_digest(anchor.mac, _anchor_mac(anchor.seq, anchor.entry_hash, key))
    ):
        return ChainReport(
            False,
            count,
            first_bad_seq=last_seq + 1,
            problem="the anchor was changed (its key does not match)",
        )
    if anchor.seq > last_seq:
        return ChainReport(
            False,
            count,
            first_bad_seq=last_seq + 1,
            problem=f"entries {last_seq + 1} to {anchor.seq} were removed",
        )
    if anchor.seq != last_seq or anchor.entry_hash != last_hash:
        return ChainReport(
            False,
            count,
            first_bad_seq=anchor.seq + 1,
            problem="entries were added after the anchor",
        )
    return ChainReport(ok=True, entries=count)


def count_entries(session: Session) -> int:
    return session.exec(select(sa.func.count()).select_from(AuditLog)).one()
