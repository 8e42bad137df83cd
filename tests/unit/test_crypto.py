"""Secrets at rest: encrypted with the data directory's key, unreadable with another."""

from __future__ import annotations

import pytest

from holovitals_sync.config import load_settings
from holovitals_sync.services.crypto import SecretDecryptError, decrypt, encrypt


def test_round_trip_and_ciphertext_hides_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(tmp_path))
    settings = load_settings()
    token = encrypt("s3cret-client-secret", settings=settings)
    assert "s3cret" not in token
    assert decrypt(token, settings=settings) == "s3cret-client-secret"


def test_other_key_cannot_decrypt(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(tmp_path / "a"))
    token = encrypt("secret", settings=load_settings())
    monkeypatch.setenv("HOLOVITALS_DATA_DIR", str(tmp_path / "b"))
    with pytest.raises(SecretDecryptError, match="not the key"):
        decrypt(token, settings=load_settings())
