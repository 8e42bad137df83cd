"""Re-encrypt every stored secret with a new key (`holovitals-sync rotate-key`).

Crash safety: the new key is written beside the old one first (`secret.key.new`), all rows
are re-encrypted in one transaction, and only after the commit does the new key replace the
old file. Until then `crypto` can read with either key, so a crash at any point leaves every
secret readable.
"""

from __future__ import annotations

import os
from base64 import urlsafe_b64encode
from secrets import token_bytes

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlmodel import Session, select

from ..config import SECRET_KEY_FILE, Settings, ensure_data_dir
from ..models import EHRConnection, HL7Message, WebhookSubscription
from . import audit
from .crypto import all_keys

# Every encrypted column, by model.
ENCRYPTED_COLUMNS = {
    EHRConnection: ("credentials_encrypted", "private_key_encrypted", "inbound_secret_encrypted"),
    WebhookSubscription: ("secret_encrypted", "previous_secret_encrypted"),
    HL7Message: ("body_encrypted",),  # HL7 v2 messages (PHI), encrypted by the listener
}


def _write_private(path: os.PathLike[str], data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data + b"\n")


def _encrypted_values(session: Session):  # noqa: ANN202 (a generator of (row, column, value))
    for model, columns in ENCRYPTED_COLUMNS.items():
        for row in session.exec(select(model)):
            for column in columns:
                value = getattr(row, column)
                if value:
                    yield row, column, value


def finish_interrupted(session: Session, settings: Settings) -> None:
    """Settle a rotation that stopped between writing the new key and swapping the files.

    If the stored secrets already decrypt with the pending key, the commit happened: install
    the key. Otherwise the commit did not happen: drop the pending key.
    """
    pending = settings.data_dir / f"{SECRET_KEY_FILE}.new"
    if settings.secret_key is not None or not pending.exists():
        return
    candidate = Fernet(pending.read_bytes().strip())
    committed = True
    for _row, _column, value in _encrypted_values(session):
        try:
            candidate.decrypt(value.encode("ascii"))
        except InvalidToken:
            committed = False
        break
    if committed:
        os.replace(pending, settings.data_dir / SECRET_KEY_FILE)
    else:
        pending.unlink()


def rotate_key(session: Session, settings: Settings, *, new_key: bytes | None = None) -> int:
    """Re-encrypt all secrets with `new_key` (generated when None); returns how many.

    With `HOLOVITALS_SECRET_KEY` set, the caller must pass the new key and then set the
    variable to it; with a key file, the file is replaced after the commit.
    """
    new_key = new_key or urlsafe_b64encode(token_bytes(32))
    Fernet(new_key)  # refuse a malformed key before touching anything
    finish_interrupted(session, settings)
    reader = MultiFernet([Fernet(k) for k in all_keys(settings)])
    pending = ensure_data_dir(settings) / f"{SECRET_KEY_FILE}.new"
    if settings.secret_key is None:
        _write_private(pending, new_key)
    writer = Fernet(new_key)
    count = 0
    for row, column, value in list(_encrypted_values(session)):
        plain = reader.decrypt(value.encode("ascii"))
        setattr(row, column, writer.encrypt(plain).decode("ascii"))
        session.add(row)
        count += 1
    audit.record(session, actor=audit.Actor.system("rotate-key"), action="secrets.rotate_key",
                 details={"secrets": count})  # fmt: skip
    session.commit()
    if settings.secret_key is None:
        os.replace(pending, settings.data_dir / SECRET_KEY_FILE)
    return count
