"""JSON columns read back through the engine's deserializer, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import sqlalchemy as sa

from holovitals_sync.db import create_db_engine
from holovitals_sync.models.types import DocumentType

METADATA = sa.MetaData()
PROBE = sa.Table(
    "json_probe",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("body", DocumentType),
)


def _read_back(url: str, raw: dict[int, str]) -> dict[int, object]:
    """Rows written as raw JSON text (as another program might), read through the ORM types."""
    engine = create_db_engine(url)
    # Text on SQLite; on PostgreSQL, cast to the column's json type (which checks syntax).
    value = "CAST(:body AS json)" if engine.dialect.name == "postgresql" else ":body"
    try:
        METADATA.create_all(engine)
        with engine.begin() as conn:
            for key, text in raw.items():
                conn.execute(
                    sa.text(f"INSERT INTO json_probe (id, body) VALUES (:id, {value})").bindparams(
                        sa.bindparam("body", type_=sa.Text)
                    ),
                    {"id": key, "body": text},
                )
        with engine.connect() as conn:
            return dict(conn.execute(sa.select(PROBE.c.id, PROBE.c.body)).all())
    finally:
        METADATA.drop_all(engine)
        engine.dispose()


def test_documents_read_back_whole_and_what_orjson_refuses_is_still_read(database_url):
    raw = {
        1: '{"resourceType": "Patient", "id": "p1", "n": 12345678901234567, '
        '"name": [{"family": "\\u00dcnal"}], "nested": {"a": [1, 2.5, null, true]}}',
        2: '{"note": "\\ud800 lone surrogate"}',
    }
    if database_url.startswith("sqlite"):
        raw[3] = '{"value": NaN}'  # PostgreSQL's json type refuses NaN itself
    got = _read_back(database_url, raw)
    assert got[1] == {
        "resourceType": "Patient",
        "id": "p1",
        "n": 12345678901234567,
        "name": [{"family": "Ünal"}],
        "nested": {"a": [1, 2.5, None, True]},
    }
    assert got[2] == {"note": "\ud800 lone surrogate"}
    if 3 in raw:
        assert math.isnan(got[3]["value"])
