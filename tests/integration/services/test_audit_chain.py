"""The audit log's hash chain detects edited and deleted rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa
from sqlmodel import Session

from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import create_db_engine
from holovitals_sync.models import AuditAnchor, AuditLog
from holovitals_sync.services import audit

ACTOR = audit.Actor.system("tests")


def _fill(engine: sa.Engine, n: int = 5) -> None:
    with Session(engine) as session:
        for i in range(n):
            audit.record(session, actor=ACTOR, action="job.start", target_type="sync_job",
                         target_id=i, details={"n": i})  # fmt: skip
        session.commit()


def _verify(engine: sa.Engine) -> audit.ChainReport:
    with Session(engine) as session:
        return audit.verify_chain(session)


def test_intact_chain_verifies(database_url):
    migrations.upgrade(database_url)
    engine = create_db_engine(database_url)
    _fill(engine)
    assert _verify(engine) == audit.ChainReport(ok=True, entries=5)


def test_edited_row_is_detected(database_url):
    migrations.upgrade(database_url)
    engine = create_db_engine(database_url)
    _fill(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"))
    report = _verify(engine)
    assert (report.ok, report.first_bad_seq) == (False, 3)
    assert "hash" in report.problem


def test_deleted_row_is_detected(database_url):
    migrations.upgrade(database_url)
    engine = create_db_engine(database_url)
    _fill(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 2"))
    report = _verify(engine)
    assert (report.ok, report.first_bad_seq, report.problem) == (False, 2, "entry 2 is missing")


def test_cli_audit_verify_exit_codes(sqlite_url, tmp_path):
    migrations.upgrade(sqlite_url)
    engine = create_db_engine(sqlite_url)
    _fill(engine, 3)
    # The same data directory, so the same audit key (<data dir>/audit.key).
    env = {**os.environ, "HOLOVITALS_DATABASE_URL": sqlite_url,
           "HOLOVITALS_DATA_DIR": str(get_settings().data_dir)}  # fmt: skip
    run = [sys.executable, "-m", "holovitals_sync.cli", "audit", "verify"]
    ok = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "intact: 3 entries" in ok.stdout
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET details = '{}' WHERE seq = 1"))
    broken = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and "broken at entry 1" in broken.stdout


def test_concurrent_writers_on_postgres_take_turns(postgres_url):
    """Two open transactions appending at once: the second waits for the first's commit
    and chains onto it, instead of both taking the same seq and one failing."""
    import threading

    migrations.upgrade(postgres_url)
    engine = create_db_engine(postgres_url)
    _fill(engine, 1)
    first = Session(engine)
    audit.record(first, actor=ACTOR, action="job.start", target_type="sync_job", target_id="a")
    result: dict[str, object] = {}

    def second_writer() -> None:
        try:
            with Session(engine) as session:
                entry = audit.record(
                    session, actor=ACTOR, action="job.start", target_type="sync_job", target_id="b"
                )
                session.commit()
                result["seq"] = entry.seq
        except Exception as exc:  # reported to the assertion below
            result["error"] = exc

    thread = threading.Thread(target=second_writer)
    thread.start()
    thread.join(1.0)
    assert thread.is_alive(), "the second writer did not wait for the first transaction"
    first.commit()
    first.close()
    thread.join(10)
    assert result == {"seq": 3}
    assert _verify(engine) == audit.ChainReport(ok=True, entries=3)


def _rows(engine: sa.Engine, sql: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(sql))


def test_truncation_is_caught_by_the_anchor(database_url):
    """Deleting the last entry, the last twenty or all of them once still verified."""
    migrations.upgrade(database_url)
    engine = create_db_engine(database_url)
    _fill(engine, 25)
    for cut, first_bad in (("seq > 24", 25), ("seq > 4", 5), ("1 = 1", 1)):
        _rows(engine, f"DELETE FROM audit_log WHERE {cut}")
        report = _verify(engine)
        assert (report.ok, report.first_bad_seq) == (False, first_bad), cut
        assert "were removed" in report.problem


def test_a_rewritten_chain_without_the_key_is_caught(database_url):
    """Editing an entry and recomputing every hash after it (plain SHA-256, as the chain
    once was) verified "intact"; without the audit key the new hashes do not match."""
    migrations.upgrade(database_url)
    engine = create_db_engine(database_url)
    _fill(engine, 4)
    with Session(engine) as session:
        rows = session.exec(sa.select(AuditLog).order_by(AuditLog.seq)).scalars().all()
        rows[1].details = {"n": 99}
        prev = rows[0].entry_hash
        for row in rows[1:]:
            row.prev_hash = prev
            row.entry_hash = audit._digest(row, None)
            prev = row.entry_hash
        anchor = session.get(AuditAnchor, 1)
        anchor.entry_hash = prev  # and the anchor moved along, as far as one can
        session.commit()
    report = _verify(engine)
    assert (report.ok, report.first_bad_seq) == (False, 2)


def test_concurrent_audited_writes_on_sqlite_never_fail(sqlite_url):
    """Bursts of audited actions once failed with UNIQUE constraint failed: audit_log.seq
    and "database is locked"; each now takes its turn and the chain stays whole."""
    import threading

    migrations.upgrade(sqlite_url)
    engine = create_db_engine(sqlite_url)
    errors: list[str] = []

    def writer(n: int) -> None:
        try:
            with Session(engine) as session:
                session.exec(sa.select(AuditLog).limit(1))  # a read first, as requests do
                audit.record(session, actor=ACTOR, action="job.start", target_id=n)
                session.commit()
        except Exception as exc:  # noqa: BLE001 (any failure is the finding)
            errors.append(type(exc).__name__)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _verify(engine) == audit.ChainReport(ok=True, entries=40)
