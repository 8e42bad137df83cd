"""The data directory and the SQLite files in it are the user's alone (issue #25, point 12:
the database was created 0644, readable by every user of the machine)."""

from __future__ import annotations

import stat

import sqlalchemy as sa

from holovitals_sync.config import load_settings
from holovitals_sync.db import engine_for


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_directory_and_database_are_private(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(data))
    engine = engine_for(load_settings())
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (x int)"))
        connection.execute(sa.text("INSERT INTO t VALUES (1)"))
    engine.dispose()
    assert _mode(data) == 0o700
    files = sorted(data.glob("holovitals.db*"))
    assert files and all(_mode(f) == 0o600 for f in files), [(f.name, oct(_mode(f))) for f in files]


def test_an_open_directory_and_database_are_closed(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "holovitals.db").touch()
    (data / "holovitals.db").chmod(0o644)
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(data))
    engine_for(load_settings()).dispose()
    assert _mode(data) == 0o700 and _mode(data / "holovitals.db") == 0o600
