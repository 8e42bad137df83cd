"""Original-mode acknowledgements (HL7 v2 chapter 2: AA, AE, AR) with MSA and ERR.

The ACK is written with the sender's own separators, because the fields it echoes (MSH-3
to MSH-6, MSH-10) are copied as the sender encoded them. ERR carries the error twice: ERR-1
(the element-location form v2.3 and v2.4 engines read) and ERR-2/3/4 (v2.5 and later), so
an engine of either age finds the code and the reason.

Built as text rather than with python-hl7's `Message.create_ack`: that costs ~160 us per
ACK (the listener answers thousands a second) and writes no ERR segment.
"""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime

from .header import CODE_TEXT, Header

AA, AE, AR = "AA", "AE", "AR"
STANDARD_SEPARATORS = "|^~\\&"
OUR_APPLICATION = "HOLOVITALS"
# ACK control ids: unique per process (pid and start time) and message (a counter), and
# within MSH-10's 20 characters of v2.3.
_PREFIX = f"HV{os.getpid() % 46656:03x}{int(time.time()) % 4096:03x}"
_COUNTER = itertools.count(1)


def _control_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):x}"[:20]


def _escape(text: str, separators: str) -> str:
    """Text of our own (a reason) made safe for a field: separators replaced by spaces."""
    return "".join(" " if ch in separators or ch in "\r\n" else ch for ch in text)


def build_ack(
    code: str, header: Header | None, *, reason: str = "", error_code: str = "", location: str = ""
) -> bytes:
    """The ACK for a message (or for a frame whose header could not be read: `header` None).

    Args:
        code: AA, AE or AR.
        header: The message's MSH, as read; None answers with our own defaults.
        reason: A fixed phrase (MSA-3 and ERR-8); never message content.
        error_code: HL7 table 0357 code for ERR (AE and AR).
        location: "SEG^sequence^field" of the error, when known.
    """
    seps = header.separators if header else STANDARD_SEPARATORS
    f, c, s = seps[0], seps[1], seps[4] if len(seps) > 4 else "&"
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    trigger = header.trigger if header else ""
    version = header.version if header else "2.5.1"
    msh = f.join(
        [
            "MSH",
            seps[1:],
            (header.msh5 if header and header.msh5 else OUR_APPLICATION),
            (header.msh6 if header else ""),
            (header.msh3 if header else ""),
            (header.msh4 if header else ""),
            now,
            "",
            c.join(["ACK", trigger, "ACK"]) if trigger else "ACK",
            _control_id(),
            (header.processing_id if header and header.processing_id else "P"),
            version,
        ]
    )
    text = _escape(reason, seps)
    msa = ["MSA", code, header.control_id if header else ""] + ([text] if text else [])
    segments = [msh, f.join(msa)]
    if code != AA:
        segments.append(_err(error_code or "207", location, text, f, c, s))
    return ("\r".join(segments) + "\r").encode("latin-1", "replace")


def _err(error_code: str, location: str, text: str, f: str, c: str, s: str) -> str:
    parts = location.split("^") if location else []
    eld = (
        c.join([*parts[:3], s.join([error_code, CODE_TEXT.get(error_code, ""), "HL70357"])])
        if parts
        else c.join(["", "", "", s.join([error_code, CODE_TEXT.get(error_code, ""), "HL70357"])])
    )
    erl = c.join(parts[:1] + parts[1:3]) if parts else ""
    cwe = c.join([error_code, CODE_TEXT.get(error_code, ""), "HL70357"])
    return f.join(["ERR", eld, erl, cwe, "E", "", "", "", text])
