"""Encryption at rest for secrets (client secrets, private keys, webhook secrets)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ..config import SECRET_KEY_FILE, Settings, get_settings, secret_key


class SecretDecryptError(Exception):
    """A stored secret cannot be read with the current key (the key changed?)."""


def all_keys(settings: Settings) -> list[bytes]:
    """The current key, then a key that `rotate-key` was interrupted while installing."""
    keys = [secret_key(settings)]
    pending = settings.data_dir / f"{SECRET_KEY_FILE}.new"
    if settings.secret_key is None and pending.exists():
        keys.append(pending.read_bytes().strip())
    return keys


def _fernet(settings: Settings | None = None) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in all_keys(settings or get_settings())])


_CIPHERS: dict[tuple[object, ...], MultiFernet] = {}


def _key_files_state(settings: Settings) -> tuple[object, ...]:
    """What the keys are made of, cheaply: the setting, or the key files' identities."""
    if settings.secret_key is not None:
        return (settings.secret_key,)
    state: list[object] = [str(settings.data_dir)]
    for name in (SECRET_KEY_FILE, f"{SECRET_KEY_FILE}.new"):
        try:
            stat = (settings.data_dir / name).stat()
            state.append((stat.st_ino, stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            state.append(None)
    return tuple(state)


def cipher(settings: Settings | None = None) -> MultiFernet:
    """The cipher itself, for callers that encrypt bytes (HL7 messages) or many at once.

    Kept while the key files stay the same (a stat each call, not a read: reading and
    checking the key costs ~170 us, which the MLLP listener would pay per batch); a key
    rotation (`secret.key.new` appearing, the key file replaced) builds it again.
    """
    settings = settings or get_settings()
    state = _key_files_state(settings)
    found = _CIPHERS.get(state)
    if found is None:
        _CIPHERS.clear()
        found = _CIPHERS[state] = _fernet(settings)
    return found


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
