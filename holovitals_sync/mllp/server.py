"""`holovitals-sync mllp`: HL7 v2 over MLLP (TCP, optionally TLS), acknowledged in original mode.

Per frame: read the MSH (python-hl7), find the feed by MSH-3/MSH-4, check what can be checked
without parsing the rest, store the message encrypted (group commit), then answer:

- AA once the message is committed (a repeat of a stored control id is answered AA again
  and stored once);
- AR when it is refused: no MSH, broken encoding characters, a required MSH field missing,
  a sender no feed names, a message that is not ADT, a frame too large or not framed;
- AE when it cannot be processed: a required segment missing, or the database would not
  take it (the sender's engine resends it).

Limits keep one sender from hurting the others: addresses outside `HOLOVITALS_MLLP_ALLOW`
are closed at once, as are connections beyond `HOLOVITALS_MLLP_MAX_CONNECTIONS`; a frame
larger than `HOLOVITALS_MLLP_MAX_MESSAGE_BYTES` is answered AR and its connection closed; a
connection that completes no frame within `HOLOVITALS_MLLP_IDLE_SECONDS` (idle, or a frame
that never ends) is closed. Logs carry control ids, event types, reasons and peer addresses,
never message content.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, start_hl7_server
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from .. import telemetry
from ..config import Settings
from ..services.hl7 import acks
from ..services.hl7.header import (
    INTERNAL_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE,
    UNSUPPORTED_MESSAGE_TYPE,
    Header,
    Refusal,
    read_header,
)
from ..services.hl7.stats import FeedCounter, publish_senders
from ..services.hl7.store import Accepted
from ..services.platform.redis import redis_connection
from .feeds import FeedMap
from .intake import Intake

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)
STATS_SECONDS = 1.0
SENDERS_SECONDS = 2.0
# Events that name a merged patient in an MRG segment.
NEEDS_MRG = frozenset({"A40", "A34", "A35", "A36", "A39", "A41", "A42"})


@dataclass
class Peer:
    """One open connection, as operators see it (no content)."""

    address: str
    transport: asyncio.BaseTransport | None = None
    since: float = field(default_factory=time.time)
    active_at: float = field(default_factory=time.monotonic)  # connected, or last frame
    connection_id: int | None = None
    sender: str = ""
    messages: int = 0
    last_at: float | None = None

    def view(self) -> dict[str, Any]:
        return {
            "peer": self.address,
            "connection_id": self.connection_id,
            "sender": self.sender,
            "since": round(self.since, 3),
            "messages": self.messages,
            "last_at": self.last_at,
        }


class ThrottledLog:
    """Refusals logged at most once a second per reason, with how many were folded in: a
    flood of garbage must not become a flood of log lines."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._folded: dict[str, int] = {}

    def warn(self, reason: str, detail: str) -> None:
        now = time.monotonic()
        if now - self._last.get(reason, 0.0) < 1.0:
            self._folded[reason] = self._folded.get(reason, 0) + 1
            return
        folded = self._folded.pop(reason, 0)
        self._last[reason] = now
        log.warning(
            "HL7 %s: %s%s", reason, detail, f" (and {folded} more like it)" if folded else ""
        )


def _segment_present(block: bytes, name: bytes, field_sep: bytes) -> bool:
    marker = name + field_sep
    return b"\r" + marker in block or b"\n" + marker in block


def _allowed(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS when a certificate is configured; with a client CA, senders must present one."""
    if settings.mllp_tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.mllp_tls_cert, settings.mllp_tls_key)
    if settings.mllp_tls_client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(settings.mllp_tls_client_ca)
    return context


class Listener:
    """The MLLP server: one asyncio loop, one task per connection."""

    def __init__(self, settings: Settings, *, intake: Intake | None = None) -> None:
        self.settings = settings
        self.networks = [ipaddress.ip_network(n, strict=False) for n in settings.mllp_allow]
        self.feeds = FeedMap()
        self.intake = intake or Intake()
        self.counter = FeedCounter()
        self.peers: dict[int, Peer] = {}
        self.refusals = ThrottledLog()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (useful with port 0)."""
        await self.feeds.load()
        context = tls_context(self.settings)
        tls = {"ssl": context, "ssl_handshake_timeout": 10} if context else {}
        self.server = await start_hl7_server(
            self._serve, host, port, limit=self.settings.mllp_max_message_bytes, backlog=1024, **tls
        )
        self._tasks = [
            asyncio.create_task(self._every(STATS_SECONDS, self._flush_stats)),
            asyncio.create_task(self._every(SENDERS_SECONDS, self._publish_peers)),
        ]
        bound = self.server.sockets[0].getsockname()[1]
        log.info(
            "MLLP listener on %s:%s%s", host, bound, " (TLS)" if self.settings.mllp_tls_cert else ""
        )
        return int(bound)

    async def stop(self) -> None:
        """Stop accepting, close open connections, write the last counts."""
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._flush_stats)

    async def _every(self, seconds: float, work: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.to_thread(work)
            except Exception as exc:  # counts are a courtesy; the feed goes on
                log.warning("MLLP listener housekeeping failed: %s", type(exc).__name__)

    def _flush_stats(self) -> None:
        self.counter.flush(redis_connection())

    def _publish_peers(self) -> None:
        publish_senders(redis_connection(), self.name, [p.view() for p in self.peers.values()])

    # -- one connection ------------------------------------------------------------------

    async def _serve(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        address = (writer.get_extra_info("peername") or ("?",))[0]
        if not _allowed(str(address), self.networks):
            self.refusals.warn("connection refused", f"{address} is not in HOLOVITALS_MLLP_ALLOW")
            writer.transport.abort()
            return
        if len(self.peers) >= self.settings.mllp_max_connections:
            self._evict_idlest(str(address))
        key = id(writer)
        peer = self.peers[key] = Peer(str(address), writer.transport)
        try:
            await self._converse(reader, writer, peer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass  # the sender went away; nothing of theirs is half-stored
        finally:
            self.peers.pop(key, None)
            writer.close()

    def _evict_idlest(self, newcomer: str) -> None:
        """At the cap, the connection idle longest makes room: thousands of idle sockets
        must not lock out a sender that talks (whose last frame is recent)."""
        idlest = min(self.peers.values(), key=lambda p: p.active_at)
        self.refusals.warn(
            "connection closed",
            (
                f"{idlest.address} idle for {time.monotonic() - idlest.active_at:.0f}s: "
                f"{len(self.peers)} connections open, {newcomer} connecting"
            ),
        )
        if idlest.transport is not None:
            idlest.transport.abort()
        self.peers = {k: p for k, p in self.peers.items() if p is not idlest}

    async def _converse(self, reader: HL7StreamReader, writer: HL7StreamWriter, peer: Peer) -> None:
        # One timer per connection, moved on at every frame, instead of `wait_for` around
        # each read (which costs a task per message): when it fires, the connection is
        # closed and the pending read ends.
        idle = self.settings.mllp_idle_seconds
        loop = asyncio.get_running_loop()
        expired = [False]

        def expire() -> None:
            expired[0] = True
            writer.transport.abort()

        timer = loop.call_later(idle, expire)
        try:
            while True:
                try:
                    block = await reader.readblock()
                except InvalidBlockError:
                    await self._answer(
                        writer,
                        self._refuse(
                            peer, None, Refusal("frame without start block", SEGMENT_SEQUENCE)
                        ),
                    )
                    continue
                except ValueError:  # the frame passed the size limit: its rest is unread
                    await self._answer(
                        writer,
                        self._refuse(peer, None, Refusal("message too large", INTERNAL_ERROR)),
                    )
                    return
                except (asyncio.IncompleteReadError, ConnectionError):
                    if expired[0]:
                        log.info(
                            "MLLP connection from %s closed: no complete frame in %gs",
                            peer.address,
                            idle,
                        )
                    return
                peer.active_at = time.monotonic()
                ack = await self._handle(block, peer)
                await self._answer(writer, ack)
                timer.cancel()
                timer = loop.call_later(idle, expire)
        finally:
            timer.cancel()

    @staticmethod
    async def _answer(writer: HL7StreamWriter, ack: bytes) -> None:
        writer.writeblock(ack)
        await writer.drain()  # a sender that stops reading is closed by the idle timer

    def _refuse(
        self, peer: Peer, connection_id: int | None, refusal: Refusal, code: str = acks.AR
    ) -> bytes:
        header = refusal.header
        sender = header.sender if header else ""
        self.counter.rejected(connection_id, code, refusal.reason, peer.address, sender)
        self.refusals.warn(
            f"message answered {code}",
            (
                f"{refusal.reason}; control id {header.control_id if header else '-'}, "
                f"from {peer.address}"
            ),
        )
        return acks.build_ack(
            code, header, reason=refusal.reason, error_code=refusal.code, location=refusal.location
        )

    async def _handle(self, block: bytes, peer: Peer) -> bytes:
        # A span per message (the feed's connection and message type, never its content);
        # the RQ job that processes a group commit of messages starts its own trace.
        with _tracer.start_as_current_span("hl7 receive", kind=SpanKind.SERVER) as span:
            ack = await self._acknowledge(block, peer)
            if span.is_recording() and peer.connection_id is not None:
                span.set_attribute("holovitals.connection_id", peer.connection_id)
            return ack

    async def _acknowledge(self, block: bytes, peer: Peer) -> bytes:
        header = read_header(block)
        if isinstance(header, Refusal):
            return self._refuse(peer, None, header)
        target = await self.feeds.find(header.sending_application, header.sending_facility)
        if target is None:
            return self._refuse(
                peer, None, Refusal("unknown sender", INTERNAL_ERROR, "MSH^1^3", header)
            )
        cid = target.connection_id
        peer.connection_id, peer.sender = cid, header.sender
        problem = self._content_problem(block, header)
        if problem is not None:
            code = acks.AR if problem.code == UNSUPPORTED_MESSAGE_TYPE else acks.AE
            return self._refuse(peer, cid, problem, code)
        try:
            await self.intake.submit(
                Accepted(cid, header.sender, header.control_id, header.message_type, block)
            )
        except Exception:  # logged by the intake; the sender's engine sends it again
            return self._refuse(
                peer, cid, Refusal("not stored, send again", INTERNAL_ERROR, "", header), acks.AE
            )
        peer.messages += 1
        peer.last_at = round(time.time(), 3)
        self.counter.acked(cid, acks.AA)
        return acks.build_ack(acks.AA, header)

    @staticmethod
    def _content_problem(block: bytes, header: Header) -> Refusal | None:
        """What can be known without parsing past the MSH: an ADT message about a patient."""
        if header.message_code != "ADT":
            return Refusal("unsupported message type", UNSUPPORTED_MESSAGE_TYPE, "MSH^1^9", header)
        field_sep = header.separators[0].encode("latin-1")
        if not _segment_present(block, b"PID", field_sep):
            return Refusal("required segment PID missing", REQUIRED_FIELD_MISSING, "PID", header)
        if header.trigger in NEEDS_MRG and not _segment_present(block, b"MRG", field_sep):
            return Refusal("required segment MRG missing", REQUIRED_FIELD_MISSING, "MRG", header)
        return None


async def serve(settings: Settings) -> None:
    """Run the listener until SIGTERM or SIGINT."""
    listener = Listener(settings)
    await listener.start(settings.mllp_host, settings.mllp_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("MLLP listener stopping")
    await listener.stop()


def run(settings: Settings) -> int:
    """Entry point of `holovitals-sync mllp`."""
    telemetry.start("mllp")  # off unless OTEL_EXPORTER_OTLP_ENDPOINT is set
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio works
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))
    return 0
