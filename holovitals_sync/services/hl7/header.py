"""The MSH segment of an incoming message: what the listener needs to route and acknowledge.

Parsed with the `hl7` package (python-hl7). Only the MSH segment is parsed on the listener's
hot path: parsing a whole ADT message costs python-hl7 ~550 us, its MSH alone ~80 us, and the
listener must answer thousands a second on one core; the rest of the message is parsed by
the worker that processes it. `hl7apy` validates against the HL7 structures as it parses,
which is stricter but slower still, and it offers no asyncio MLLP; it serves the tests as an
independent sender instead.

A header that cannot be trusted (no MSH, wrong encoding characters, a required field missing)
is a `Refusal`: the listener answers AR with the reason and stores nothing.
"""

from __future__ import annotations

from typing import NamedTuple

import hl7

# HL7 table 0357, the error codes an ERR segment carries.
SEGMENT_SEQUENCE = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT = "201"
UNSUPPORTED_VERSION = "203"
INTERNAL_ERROR = "207"
CODE_TEXT = {
    SEGMENT_SEQUENCE: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT: "Unsupported event code",
    UNSUPPORTED_VERSION: "Unsupported version id",
    INTERNAL_ERROR: "Application internal error",
}
MAX_CONTROL_ID = 199  # MSH-10 is ST(199) since v2.5
MAX_NAME = 180


class Header(NamedTuple):
    """The MSH fields routing and the ACK need (as the sender encoded them)."""

    separators: str  # MSH-1 then MSH-2, e.g. "|^~\\&"
    sending_application: str  # MSH-3.1
    sending_facility: str  # MSH-4.1
    msh3: str  # the whole fields, echoed in the ACK
    msh4: str
    msh5: str
    msh6: str
    message_code: str  # MSH-9.1, e.g. "ADT"
    trigger: str  # MSH-9.2, e.g. "A08"
    control_id: str  # MSH-10
    processing_id: str  # MSH-11
    version: str  # MSH-12.1

    @property
    def sender(self) -> str:
        """The sender's key: a repeated control id is a repeat only from the same sender."""
        return f"{self.sending_application}|{self.sending_facility}"

    @property
    def message_type(self) -> str:
        return f"{self.message_code}^{self.trigger}"


class Refusal(NamedTuple):
    """Why a message is answered AR (or AE) without being stored; no message content."""

    reason: str  # a fixed phrase: logged, counted and shown to operators
    code: str  # HL7 table 0357
    location: str = ""  # "MSH^1^10": segment, sequence, field
    header: Header | None = None  # the header, when it could be read


def _valid_separators(text: str) -> bool:
    """MSH-1 and MSH-2: five (or six, with v2.7's truncation character) distinct
    characters, none a letter, digit, space or line break."""
    if len(text) not in (5, 6) or len(set(text)) != len(text):
        return False
    return not any(ch.isalnum() or ch in " \r\n\t" for ch in text)


def first_segment(block: bytes) -> bytes:
    """The MSH segment's bytes (senders end segments with CR; some use LF or CRLF)."""
    end = len(block)
    for sep in (b"\r", b"\n"):
        at = block.find(sep)
        if at != -1:
            end = min(end, at)
    return block[:end]


def _component(field: object, index: int = 1) -> str:
    """One component of a parsed field ("" where absent)."""
    try:
        return str(field(index)) if callable(field) else str(field)  # type: ignore[operator]
    except (IndexError, KeyError):
        return ""


def read_header(block: bytes) -> Header | Refusal:
    """The message's MSH, or why it cannot be accepted."""
    if not block.startswith(b"MSH"):
        return Refusal("no MSH segment first", SEGMENT_SEQUENCE, "MSH^1")
    raw = first_segment(block).decode("latin-1")
    if len(raw) < 9:
        return Refusal("malformed MSH", SEGMENT_SEQUENCE, "MSH^1")
    field_sep = raw[3]
    end = raw.find(field_sep, 4)
    separators = field_sep + (raw[4:end] if end != -1 else raw[4:])
    if not _valid_separators(separators):
        return Refusal("malformed MSH: encoding characters", DATA_TYPE_ERROR, "MSH^1^2")
    try:
        msh = hl7.parse(raw).segment("MSH")
    except Exception:  # noqa: BLE001 - python-hl7 raises assorted errors on broken input
        return Refusal("malformed MSH", SEGMENT_SEQUENCE, "MSH^1")
    return _fields(msh, separators)


def _field(msh: hl7.Segment, index: int) -> str:
    try:
        return str(msh(index))
    except (IndexError, KeyError):
        return ""


def _fields(msh: hl7.Segment, separators: str) -> Header | Refusal:
    msh9 = msh(9) if len(msh) > 9 else ""
    header = Header(
        separators=separators,
        sending_application=_component(msh(3)) if len(msh) > 3 else "",
        sending_facility=_component(msh(4)) if len(msh) > 4 else "",
        msh3=_field(msh, 3),
        msh4=_field(msh, 4),
        msh5=_field(msh, 5),
        msh6=_field(msh, 6),
        message_code=_component(msh9(1), 1) if msh9 else "",
        trigger=_component(msh9(1), 2) if msh9 else "",
        control_id=_field(msh, 10),
        processing_id=_field(msh, 11),
        version=_component(msh(12)) if len(msh) > 12 else "",
    )
    for value, location in (
        (header.sending_application, "MSH^1^3"),
        (header.message_code, "MSH^1^9"),
        (header.control_id, "MSH^1^10"),
        (header.version, "MSH^1^12"),
    ):
        if not value:
            return Refusal(
                f"malformed MSH: MSH-{location.rsplit('^', 1)[1]} missing",
                REQUIRED_FIELD_MISSING,
                location,
                header,
            )
    if (
        len(header.control_id) > MAX_CONTROL_ID
        or len(header.msh3) > MAX_NAME
        or len(header.msh4) > MAX_NAME
    ):
        return Refusal("malformed MSH: field too long", DATA_TYPE_ERROR, "MSH^1", header)
    if not header.version.startswith("2."):
        return Refusal("unsupported HL7 version", UNSUPPORTED_VERSION, "MSH^1^12", header)
    return header
