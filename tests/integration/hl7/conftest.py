"""HL7 v2 feed tests: a migrated database (SQLite and PostgreSQL), the tests' Redis, the MLLP
listener as a real `holovitals-sync mllp` process on a free loopback port, and senders built
from libraries we did not write: hl7apy builds the messages, python-hl7's clients send them
over MLLP and parse the ACKs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import hl7
import pytest
from hl7.client import MLLPClient
from hl7apy.core import Message

from holovitals_sync.db import session_scope
from holovitals_sync.models import HL7Feed
from tests.conftest import REDIS_TEST_URL
from tests.factories import make_connection
from tests.process_env import holovitals_env

HOLOVITALS = str(Path(sys.executable).parent / "holovitals-sync")
SANDBOX_AUTHORITY = "SANDBOX&2.16.840.1.113883.3.7418.1.1&ISO"  # the sandbox's MRN system
IDLE_SECONDS = 3
MAX_CONNECTIONS = 300
MAX_MESSAGE_BYTES = 1024 * 1024


@pytest.fixture
def hl7_db(database_url: str, redis_client, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings for this process and the listener and workers it starts."""
    with holovitals_env(
        monkeypatch,
        database_url,
        REDIS_TEST_URL,
        mllp_idle_seconds=IDLE_SECONDS,
        mllp_max_connections=MAX_CONNECTIONS,
        mllp_max_message_bytes=MAX_MESSAGE_BYTES,
        retry_backoff=1,
        mllp_coalesce_seconds=0.5,
    ) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class ListenerProcess:
    """`holovitals-sync mllp` in a process group of its own; its log kept for checks."""

    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self) -> ListenerProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [HOLOVITALS, "mllp", "--port", str(self.port)],
                env=dict(os.environ),
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not _accepting(self.port):
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, "listener did not start"
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self) -> MLLPClient:
        return MLLPClient("127.0.0.1", self.port)


@pytest.fixture
def listener(hl7_db: str, tmp_path: Path) -> Iterator[ListenerProcess]:
    process = ListenerProcess(tmp_path / "mllp.log").start()
    yield process
    process.stop()


def add_feed(connection_id: int, application: str = "EPICADT", facility: str = "GOODHEALTH") -> int:
    with session_scope() as session:
        feed = HL7Feed(
            connection_id=connection_id, sending_application=application, sending_facility=facility
        )
        session.add(feed)
        session.commit()
        return int(feed.id)


@pytest.fixture
def feed_connection(hl7_db: str) -> int:
    """A connection (not reachable: for tests that stop at the store) with one feed."""
    with session_scope() as session:
        cid = int(make_connection(session, "ADT Hospital").id)
    add_feed(cid)
    return cid


def adt(
    trigger: str,
    control_id: str,
    *,
    mrn: str = "MRN0000001",
    authority: str = SANDBOX_AUTHORITY,
    application: str = "EPICADT",
    facility: str = "GOODHEALTH",
    name: str = "DOE^JANE",
    merged_mrn: str | None = None,
    structure: str = "ADT_A01",
) -> str:
    """An ADT message built with hl7apy (v2.5), as an interface engine would send it."""
    if trigger == "A40":
        message = Message("ADT_A39", version="2.5")
        message.evn.evn_1 = trigger
        group = message.add_group("ADT_A39_PATIENT")
        group.pid.pid_3 = f"{mrn}^^^{authority}^MR"
        group.pid.pid_5 = name
        group.mrg.mrg_1 = f"{merged_mrn}^^^{authority}^MR"
        structure = "ADT_A39"
    else:
        message = Message(structure, version="2.5")
        message.evn.evn_1 = trigger
        message.pid.pid_3 = f"{mrn}^^^{authority}^MR"
        message.pid.pid_5 = name
        message.pid.pid_7 = "19700101"
        message.pv1.pv1_2 = "I"
    message.msh.msh_3 = application
    message.msh.msh_4 = facility
    message.msh.msh_5 = "HOLOVITALS"
    message.msh.msh_6 = "HV"
    message.msh.msh_9 = f"ADT^{trigger}^{structure}"
    message.msh.msh_10 = control_id
    message.msh.msh_11 = "P"
    return message.to_er7() + "\r"


@dataclass
class Ack:
    code: str
    control_id: str
    error_code: str
    text: str


def parse_ack(raw: str | bytes) -> Ack:
    """An ACK as the sender's engine reads it (python-hl7)."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    message = hl7.parse(text.strip("\x0b\x1c\r\n") + "\r")
    msa = message.segment("MSA")
    error = ""
    for segment in message:
        if str(segment[0]) == "ERR":
            error = str(message.extract_field("ERR", 1, 3, 1, 1, 1))
    text = str(msa(3)) if len(msa) > 3 else ""
    return Ack(str(msa(1)), str(msa(2)), error, text)


def send(listener: ListenerProcess, message: str | bytes) -> Ack:
    with listener.client() as client:
        return parse_ack(client.send_message(message))


@pytest.fixture
def wh_db(hl7_db: str) -> str:
    """The webhooks suite's `backend` fixture, served on this suite's settings."""
    return hl7_db
