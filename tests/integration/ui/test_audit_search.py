"""Audit search on SQLite and PostgreSQL: filters, free text, keyset pages, chain status."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from holovitals_sync import migrations
from holovitals_sync.db import create_db_engine
from holovitals_sync.models import ActorKind, AuditLog
from holovitals_sync.services import audit
from holovitals_sync.ui.views import audit_log
from holovitals_sync.ui.views.audit_log import AuditQuery

ADA = audit.Actor(ActorKind.USER, "ada")
BOB = audit.Actor(ActorKind.USER, "bob")


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    migrations.upgrade(database_url)
    engine = create_db_engine(database_url)
    with Session(engine) as session:
        for i in range(30):
            audit.record(session, actor=ADA if i % 2 else BOB, action="connection.update",
                         target_type="connection", target_id=i % 3,
                         details={"fields": ["sync_schedule"]})  # fmt: skip
        audit.record(session, actor=ADA, action="connection.create", target_type="connection",
                     target_id=7, details={"vendor": "oracle_health"})  # fmt: skip
        audit.record(session, actor=BOB, action="rule_100%.odd", target_type="x_y",
                     target_id="1", outcome="denied")  # fmt: skip
        session.commit()
    yield engine
    engine.dispose()


def _search(engine: sa.Engine, **filters) -> audit_log.AuditPage:
    with Session(engine) as session:
        return audit_log.search(session, AuditQuery(**filters))


def _seqs(page: audit_log.AuditPage) -> list[int]:
    return [int(r["seq"]) for r in page.rows]


def test_newest_first_in_keyset_pages(engine):
    first = _search(engine, limit=10)
    assert _seqs(first) == list(range(32, 22, -1)) and first.next_before == 23
    rest = _search(engine, limit=30, before=first.next_before)
    assert _seqs(rest) == list(range(22, 0, -1)) and rest.next_before is None


def test_filters_combine(engine):
    assert len(_search(engine, actor="ADA", action="update", limit=100).rows) == 15
    only = _search(engine, target="connection 7")
    assert [r["action"] for r in only.rows] == ["connection.create"]
    assert len(_search(engine, target="connection", limit=100).rows) == 31
    assert len(_search(engine, target="1", limit=100).rows) == 11  # 10 updates + the x_y one


def test_free_text_covers_details_and_escapes_wildcards(engine):
    found = _search(engine, text="oracle_health")
    assert [r["seq"] for r in found.rows] == ["31"]
    assert [r["action"] for r in _search(engine, text="100%").rows] == ["rule_100%.odd"]
    assert [r["outcome"] for r in _search(engine, text="denied").rows] == ["denied"]
    assert _search(engine, text="%").rows[0]["seq"] == "32"  # a literal %, not "anything"
    assert len(_search(engine, text="%", limit=100).rows) == 1


def test_date_range_is_inclusive_days(engine):
    today = datetime.now(UTC).date()
    assert len(_search(engine, since=today, until=today, limit=100).rows) == 32
    assert _search(engine, until=today - timedelta(days=1)).rows == []
    assert _search(engine, since=today + timedelta(days=1)).rows == []
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit_log SET at = :at WHERE seq = 1"),
            {"at": datetime(2026, 1, 5, 23, 59, tzinfo=UTC)},
        )
    assert _seqs(_search(engine, since=date(2026, 1, 5), until=date(2026, 1, 5))) == [1]


def test_chain_status_reports_a_broken_chain(engine, monkeypatch):
    with Session(engine) as session:
        assert audit_log.chain_status(session).state == "ok"
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4"))
    with Session(engine) as session:
        status = audit_log.chain_status(session)
        assert status.state == "broken" and "entry 4" in status.message
        monkeypatch.setattr(audit_log, "CHEAP_VERIFY_LIMIT", 10)
        assert audit_log.chain_status(session).state == "skipped"
        assert audit_log.chain_status(session, force=True).state == "broken"
    assert AuditLog.__tablename__ == "audit_log"
