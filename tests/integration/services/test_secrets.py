"""Secrets at rest: key rotation re-encrypts everything and survives an interruption."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlmodel import select

from holovitals_sync import migrations
from holovitals_sync.config import get_settings
from holovitals_sync.db import get_engine, session_scope
from holovitals_sync.models import EHRConnection
from holovitals_sync.services.crypto import decrypt
from holovitals_sync.services.key_rotation import rotate_key
from tests.factories import make_connection


@pytest.fixture
def db(monkeypatch, sqlite_url):
    migrations.upgrade(sqlite_url)
    monkeypatch.setenv("HOLOVITALS_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    return sqlite_url


def test_rotate_key_re_encrypts_every_secret(db):
    settings = get_settings()
    with session_scope() as session:
        make_connection(session, "A", client_secret="alpha-secret-1")
        make_connection(session, "B", client_secret="beta-secret-2")
    old_key = (settings.data_dir / "secret.key").read_bytes()
    with session_scope() as session:
        before = {c.name: c.credentials_encrypted for c in session.exec(select(EHRConnection))}
        assert rotate_key(session, settings) == 2
    assert (settings.data_dir / "secret.key").read_bytes() != old_key
    assert not (settings.data_dir / "secret.key.new").exists()
    with session_scope() as session:
        rows = {c.name: c for c in session.exec(select(EHRConnection))}
    assert decrypt(rows["A"].credentials_encrypted) == "alpha-secret-1"
    assert decrypt(rows["B"].credentials_encrypted) == "beta-secret-2"
    assert rows["A"].credentials_encrypted != before["A"]


def test_crash_between_commit_and_key_swap_loses_nothing(db, monkeypatch):
    """The rows are committed under the new key but the key file was not replaced yet."""
    from holovitals_sync.services import key_rotation

    settings = get_settings()
    with session_scope() as session:
        make_connection(session, "A", client_secret="alpha-secret-1")

    def crash(*_args):
        raise OSError("power cut")

    with monkeypatch.context() as patch:
        patch.setattr(key_rotation.os, "replace", crash)
        with pytest.raises(OSError), session_scope() as session:
            rotate_key(session, settings)
    assert (settings.data_dir / "secret.key.new").exists()
    with session_scope() as session:
        row = session.exec(select(EHRConnection)).one()
    assert decrypt(row.credentials_encrypted) == "alpha-secret-1"
    # The next rotation settles the interrupted one first, so no key is ever lost.
    with session_scope() as session:
        rotate_key(session, settings)
    assert not (settings.data_dir / "secret.key.new").exists()
    with session_scope() as session:
        row = session.exec(select(EHRConnection)).one()
    assert decrypt(row.credentials_encrypted) == "alpha-secret-1"


def test_cli_user_create_reads_password_from_stdin(db, tmp_path):
    env = {**os.environ, "HOLOVITALS_DATABASE_URL": db, "HOLOVITALS_DATA_DIR": str(tmp_path)}
    run = [
        sys.executable,
        "-m",
        "holovitals_sync.cli",
        "user",
        "create",
        "--username",
        "ada",
        "--role",
        "admin",
        "--password-stdin",
    ]
    short = subprocess.run(run, env=env, input="short\n", capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert short.returncode == 2 and "at least 12" in short.stderr
    ok = subprocess.run(run, env=env, input="a long enough password\n", capture_output=True,
                        text=True, timeout=60)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "a long enough password" not in ok.stderr + ok.stdout
