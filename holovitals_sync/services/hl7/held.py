"""Messages held for their connection: failed on its settings, processed again once it is saved.

A message whose processing met the connection's own settings (a missing private key, a
vendor setting left out, a base URL whose links point elsewhere; `permanent_reason`) would
fail the same way on every try, so it is not retried: it ends `failed` at once with the
reason, and the webhooks maintenance stops asking the EHR for it every minute. But the
listener acknowledged it (AA), and the hospital will not send it again; so when an
administrator saves the connection or gives it a key, its held messages go back to
`received` and are queued again, in the same transaction as the change.
"""

from __future__ import annotations

import logging

from sqlalchemy import event, update
from sqlmodel import Session, col

from ...models import HL7Message, InboundStatus
from ..platform.failures import permanent_reason
from . import queueing

log = logging.getLogger(__name__)
HELD = "held for the connection: "
RELEASED = "queued again: the connection was saved"


def held_outcome(exc: BaseException) -> str | None:
    """The outcome of a message held for its connection, or None for another failure.

    Names the setting (configuration errors name settings, never data), not the message.
    """
    reason = permanent_reason(exc)
    if reason is None:
        return None
    detail = f"{type(exc).__name__}: {exc}" if reason == "a configuration error" else reason
    return f"{HELD}{detail}"[:170] + "; tried again when it is saved"


def release(session: Session, connection_id: int) -> int:
    """Put the connection's held messages back to `received` (queued after the commit)."""
    statement = (
        update(HL7Message)
        .where(
            col(HL7Message.connection_id) == connection_id,
            col(HL7Message.status) == InboundStatus.FAILED,
            col(HL7Message.outcome).startswith(HELD),
        )
        .values(status=InboundStatus.RECEIVED, outcome=RELEASED, processed_at=None)
        .returning(col(HL7Message.id))
    )
    ids = [int(i) for i in session.execute(statement).scalars()]
    if ids:
        event.listen(session, "after_commit", lambda _s: _queue(ids), once=True)
    return len(ids)


def _queue(ids: list[int]) -> None:
    try:
        queueing.enqueue_messages(ids)
    except Exception as exc:  # noqa: BLE001 - they are `received`: the sweep queues them
        log.warning("held HL7 messages not queued yet: %s", type(exc).__name__)
