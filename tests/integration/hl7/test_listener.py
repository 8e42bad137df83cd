"""The MLLP listener against a real sender: AA only for what is stored (encrypted), a repeat
acknowledged again and stored once, AR/AE with MSA and ERR for what cannot be taken, and bad
input of every kind answered or closed while other senders go on being served."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest
from sqlmodel import select

from holovitals_sync.db import session_scope
from holovitals_sync.models import HL7Message, InboundStatus
from holovitals_sync.services.hl7.store import read_body
from tests.waiting import wait_for

from .conftest import IDLE_SECONDS, MAX_CONNECTIONS, adt, send

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
PHI = ("DOE", "JANE", "MRN0000001", "19700101")


def _messages() -> list[HL7Message]:
    with session_scope() as session:
        return list(session.exec(select(HL7Message).order_by(HL7Message.id)))


def test_aa_only_once_stored_encrypted_and_a_repeat_stored_once(feed_connection, listener):
    message = adt("A08", "CTL-1")
    first = send(listener, message)
    assert (first.code, first.control_id) == ("AA", "CTL-1")
    [row] = _messages()  # stored before the AA came back
    assert (row.connection_id, row.sender, row.control_id, row.message_type) == (
        feed_connection,
        "EPICADT|GOODHEALTH",
        "CTL-1",
        "ADT^A08",
    )
    assert row.status == InboundStatus.RECEIVED
    assert not any(value in row.body_encrypted for value in PHI)
    assert read_body(row) == message.encode()

    again = send(listener, message)  # the sender's engine resends: acknowledged, not stored
    assert (again.code, again.control_id) == ("AA", "CTL-1")
    assert len(_messages()) == 1
    # The same control id from another sender is another message.
    from .conftest import add_feed

    add_feed(feed_connection, "OTHERADT", "GOODHEALTH")
    time.sleep(0.3)  # an unknown sender makes the listener read the feeds again (4/s)
    other = send(listener, adt("A08", "CTL-1", application="OTHERADT"))
    assert other.code == "AA"
    assert len(_messages()) == 2


@pytest.mark.parametrize(
    ("frame", "code", "error"),
    [
        (adt("A08", "U-1", application="STRANGER"), "AR", "207"),  # no feed names the sender
        (adt("A08", "T-1").replace("ADT^A08^ADT_A01", "ORU^R01^ORU_R01"), "AR", "200"),
        (adt("A08", "M-1").replace("|M-1|", "||"), "AR", "101"),  # MSH-10 missing
        (adt("A08", "E-1").replace("MSH|^~\\&|", "MSH|^^\\&|", 1), "AR", "102"),  # encoding chars
        ("PID|||123\rMSH|^~\\&|EPICADT|GOODHEALTH\r", "AR", "100"),  # no MSH first
        ("\x00\xff garbage that is no message at all", "AR", "100"),
        (adt("A08", "P-1").replace("\rPID|", "\rZZZ|"), "AE", "101"),  # required PID missing
        (adt("A40", "G-1", merged_mrn="MRN9").replace("\rMRG|", "\rZZZ|"), "AE", "101"),
    ],
)
def test_refused_messages_get_their_code_and_store_nothing(
    feed_connection, listener, frame, code, error
):
    ack = send(listener, frame)
    assert (ack.code, ack.error_code) == (code, error)
    assert ack.text  # the reason, for the sender's engine
    assert _messages() == []
    assert send(listener, adt("A08", "OK-1")).code == "AA"  # the listener goes on


def test_operators_see_acks_rejects_and_senders(feed_connection, listener, redis_client):
    from holovitals_sync.services.hl7.stats import feed_view

    from .conftest import parse_ack

    assert send(listener, adt("A08", "S-X").replace("\rPID|", "\rZZZ|")).code == "AE"
    with listener.client() as client:  # one engine connection that stays open
        sent = 0

        def seen() -> dict | None:
            nonlocal sent
            if sent < 3:
                assert parse_ack(client.send_message(adt("A08", f"S-{sent}"))).code == "AA"
                sent += 1
            view = feed_view(redis_client, feed_connection)
            # Counts and the open connections are published on timers of their own.
            counted = [s["messages"] for s in view["senders"]] == [3]
            return view if view["acks_today"]["AA"] == 3 and counted else None

        view = wait_for(seen, timeout=15, interval=0.5)
    assert view["acks_today"] == {"AA": 3, "AE": 1, "AR": 0}
    assert view["rejects"] == {"required segment PID missing": 1}
    assert view["last_message_at"] is not None
    assert sum(view["messages_per_minute"]) == 4
    [sender] = view["senders"]
    assert (sender["sender"], sender["messages"]) == ("EPICADT|GOODHEALTH", 3)


def test_a_50_mb_message_is_refused_and_its_connection_closed(feed_connection, listener):
    big = adt("A08", "BIG-1").encode() + b"NTE|1||" + b"x" * (50 * 1024 * 1024) + b"\r"
    with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as sock:
        # Closed while we were still sending is also an answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"\x0b" + big + b"\x1c\r")
        answer = _read_all(sock)
    if answer:
        assert b"MSA|AR" in answer and b"message too large" in answer
    assert _messages() == []
    assert send(listener, adt("A08", "AFTER-BIG")).code == "AA"
    assert "BIG-1" not in listener.log() or "DOE" not in listener.log()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    sock.settimeout(IDLE_SECONDS + 10)
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def test_a_frame_that_never_ends_is_closed_while_others_are_served(feed_connection, listener):
    with socket.create_connection(("127.0.0.1", listener.port)) as slow:
        slow.sendall(b"\x0b" + adt("A08", "NEVER-1").encode())  # no end of block, ever
        started = time.monotonic()
        assert send(listener, adt("A08", "MEANWHILE")).code == "AA"
        assert _read_all(slow) == b""  # closed by the listener, without an answer
        assert IDLE_SECONDS - 0.5 <= time.monotonic() - started < IDLE_SECONDS + 10
    assert [m.control_id for m in _messages()] == ["MEANWHILE"]


def test_thousands_of_idle_connections_do_not_lock_out_a_sender(feed_connection, listener):
    idle = []
    try:
        for _ in range(2000):
            idle.append(socket.create_connection(("127.0.0.1", listener.port)))
        # Past the cap the idlest make room; a sender that talks is served at once.
        for n in range(5):
            assert send(listener, adt("A08", f"BUSY-{n}")).code == "AA"
        assert len(_messages()) == 5
    finally:
        for sock in idle:
            sock.close()
    assert MAX_CONNECTIONS < 2000


def test_logs_hold_no_phi(feed_connection, listener):
    send(listener, adt("A08", "LOG-1"))
    send(listener, adt("A08", "LOG-2", application="STRANGER"))
    send(listener, adt("A08", "LOG-3").replace("\rPID|", "\rZZZ|"))
    wait_for(lambda: "LOG-3" in listener.log(), timeout=10)
    log = listener.log()
    assert "LOG-2" in log  # control ids are logged ...
    assert not any(value in log for value in PHI)  # ... names, MRNs and birth dates never
