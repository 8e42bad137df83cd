"""Nothing lost, nothing twice: the listener is killed with SIGKILL while 8 senders stream
to it, and restarted; each sender resends whatever was not acknowledged AA (as interface
engines do), and every message ends stored exactly once. The senders are python-hl7's
asyncio MLLP streams."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from hl7.mllp import open_hl7_connection
from sqlmodel import func, select

from holovitals_sync.db import session_scope
from holovitals_sync.models import HL7Message

from .conftest import adt

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
SENDERS, PER_SENDER = 8, 150


async def _sender(port: int, n: int, acked: list[int]) -> None:
    """Send PER_SENDER messages in order; on a lost connection, reconnect and resend the
    message whose AA never came (original mode: one message in flight)."""
    pending = [adt("A08", f"K{n}-{i}", mrn=f"MRN{n:03d}{i:04d}") for i in range(PER_SENDER)]
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        try:
            reader, writer = await open_hl7_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        try:
            while pending:
                writer.writeblock(pending[0].encode())
                await writer.drain()
                ack = await asyncio.wait_for(reader.readmessage(), 10)
                if str(ack.segment("MSA")(1)) == "AA":
                    pending.pop(0)
                    acked[0] += 1
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            await asyncio.sleep(0.05)
        finally:
            writer.close()
    assert not pending, f"sender {n}: {len(pending)} never acknowledged"


def test_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice(feed_connection, listener):
    acked = [0]

    def killer() -> None:
        while acked[0] < SENDERS * PER_SENDER // 3:
            time.sleep(0.01)
        listener.kill()
        time.sleep(0.5)
        listener.start()

    thread = threading.Thread(target=killer)
    thread.start()

    async def all_senders() -> None:
        await asyncio.gather(*(_sender(listener.port, n, acked) for n in range(SENDERS)))

    asyncio.run(all_senders())
    thread.join(30)
    assert listener.proc is not None and listener.proc.poll() is None  # restarted, serving
    with session_scope() as session:
        rows = session.exec(
            select(HL7Message.control_id, func.count()).group_by(HL7Message.control_id)
        ).all()
    stored = dict(rows)
    expected = {f"K{n}-{i}" for n in range(SENDERS) for i in range(PER_SENDER)}
    assert set(stored) == expected  # nothing lost ...
    assert set(stored.values()) == {1}  # ... nothing twice
