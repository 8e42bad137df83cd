"""Encryption at rest for secrets (client secrets, private keys, webhook secrets)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from ..config import Settings, get_settings, secret_key


class SecretDecryptError(Exception):
    """A stored secret cannot be read with the current key (the key changed?)."""


def _fernet(settings: Settings | None = None) -> Fernet:
    return Fernet(secret_key(settings or get_settings()))


def encrypt(plaintext: str, *, settings: Settings | None = None) -> str:
    """Encrypt a secret for storage; the result is an ASCII Fernet token."""
    return _fernet(settings).encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str, *, settings: Settings | None = None) -> str:
    """Decrypt a stored secret."""
    try:
        return _fernet(settings).decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise SecretDecryptError(
            "a stored secret cannot be decrypted: HOLOVITALS_SECRET_KEY or "
            "<data_dir>/secret.key is not the key it was saved with"
        ) from None
