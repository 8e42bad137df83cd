"""Settings: defaults, .env, the one-line error for a bad value, the generated secret key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from holovitals_sync.config import ConfigError, load_settings, secret_key


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(tmp_path / "d"))
    settings = load_settings()
    assert settings.sync_batch_size == 100
    assert settings.retry_attempts == 3
    assert settings.retry_backoff == [2, 4, 8]
    # Sized to the machine this runs on (two per core for the network-bound families).
    cores = len(os.sched_getaffinity(0))
    assert [
        settings.workers_for(f) for f in ("sync", "webhooks", "conflicts", "transformations")
    ] == [2 * cores, 2 * cores, 1, 1]
    assert settings.backend_workers == cores and settings.worker_nice == 10
    assert settings.webhook_signature_tolerance == 300
    assert settings.redis_url is None
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'd' / 'holovitals.db'}"
    assert settings.queue_names("sync") == ["sync.high", "sync.default", "sync.low"]


def test_env_file_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("HOLOVITALS_SYNC_BATCH_SIZE=250\nHOLOVITALS_RETRY_BACKOFF=1,5\n")
    settings = load_settings()
    assert settings.sync_batch_size == 250
    assert settings.retry_backoff == [1, 5]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("HOLOVITALS_SYNC_BATCH_SIZE", "lots", "BATCH_SIZE: expected a whole number"),
        ("HOLOVITALS_SYNC_BATCH_SIZE", "0", "from 1 to 10000"),
        ("HOLOVITALS_RETRY_BACKOFF", "2,soon", "RETRY_BACKOFF: expected comma-separated"),
        ("HOLOVITALS_WORKERS_SYNC", "-3", "HOLOVITALS_WORKERS_SYNC: expected a whole number"),
        ("HOLOVITALS_REDIS_URL", "http://x", "HOLOVITALS_REDIS_URL: expected a redis://"),
        ("HOLOVITALS_DATABASE_URL", "mysql://x", "HOLOVITALS_DATABASE_URL: expected a sqlite"),
        ("HOLOVITALS_HTTP_READ_TIMEOUT", "never", "READ_TIMEOUT: expected a number"),
    ],
)
def test_bad_value_names_variable(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_bad_value_stops_cli_with_one_line(tmp_path):
    env = {**os.environ, "HOLOVITALS_DATA_DIR": str(tmp_path), "HOLOVITALS_SYNC_BATCH_SIZE": "x"}
    result = subprocess.run(
        [sys.executable, "-m", "holovitals_sync.cli", "migrate"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "HOLOVITALS_SYNC_BATCH_SIZE" in lines[0]
    assert not (tmp_path / "holovitals.db").exists()


def test_secret_key_generated_once_with_mode_0600(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(tmp_path / "d"))
    settings = load_settings()
    first = secret_key(settings)
    path = tmp_path / "d" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key(load_settings()) == first


def test_secret_key_from_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOLOVITALS_SECRET_KEY", "k" * 43 + "=")
    assert secret_key(load_settings()) == b"k" * 43 + b"="
    assert not (tmp_path / "secret.key").exists()


def test_worker_counts_follow_the_cores(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    settings = load_settings()
    assert (settings.workers_sync, settings.workers_webhooks, settings.backend_workers) == (
        16,
        16,
        8,
    )
    monkeypatch.setenv("HOLOVITALS_WORKERS_SYNC", "3")  # still a setting
    assert load_settings().workers_sync == 3
