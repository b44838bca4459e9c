"""HL7 v2 general acknowledgment (ACK) messages, original acknowledgment mode.

MSA-1 (HL7 table 0008): ``AA`` application accept, ``AE`` application error, ``AR`` application
reject. ERR-3 carries the HL7 error code from table 0357 (v2.5+); MSA-3 repeats the text because
many v2.3 engines still only read that field.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import lru_cache

from site_agent.hl7.er7 import DEFAULT_ENCODING, Encoding, escape

__all__ = ["AckCode", "AckHeader", "ErrorCode", "build_ack", "header_from_prefix"]


class AckCode(str, Enum):
    AA = "AA"
    AE = "AE"
    AR = "AR"


class ErrorCode(str, Enum):
    """HL7 table 0357 (message error condition codes)."""

    ACCEPTED = "0"
    SEGMENT_SEQUENCE = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE = "102"
    TABLE_VALUE_NOT_FOUND = "103"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT = "201"
    UNSUPPORTED_PROCESSING_ID = "202"
    UNSUPPORTED_VERSION = "203"
    UNKNOWN_KEY = "204"
    DUPLICATE_KEY = "205"
    RECORD_LOCKED = "206"
    INTERNAL_ERROR = "207"


_ERROR_TEXT = {
    ErrorCode.SEGMENT_SEQUENCE: "Segment sequence error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE: "Data type error",
    ErrorCode.TABLE_VALUE_NOT_FOUND: "Table value not found",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT: "Unsupported event code",
    ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCode.UNSUPPORTED_VERSION: "Unsupported version id",
    ErrorCode.UNKNOWN_KEY: "Unknown key identifier",
    ErrorCode.DUPLICATE_KEY: "Duplicate key identifier",
    ErrorCode.RECORD_LOCKED: "Application record locked",
    ErrorCode.INTERNAL_ERROR: "Application internal error",
}


@dataclass(frozen=True, slots=True)
class AckHeader:
    """What an ACK echoes from the message it answers (all optional for unreadable input)."""

    sending_app: str = ""
    sending_facility: str = ""
    receiving_app: str = ""
    receiving_facility: str = ""
    trigger: str = ""
    control_id: str = ""
    processing_id: str = "P"
    version: str = "2.5"
    encoding: Encoding = DEFAULT_ENCODING


_counter = itertools.count(1)


def base36(n: int) -> str:
    """`n` (>= 0) in base 36: short unique parts of HL7 control ids (MSH-10, 20 characters)."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


# ACK control IDs must not repeat after a restart: a start-time prefix (ms, base 36) and a
# counter, well within the 20 characters MSH-10 has in v2.5.
_PREFIX = "A" + base36(time.time_ns() // 1_000_000)


def header_from_prefix(data: bytes) -> AckHeader:
    """Best-effort header from the first bytes of a message we could not parse.

    Used for oversize frames and parse failures: if MSH-10 can be recovered the sender can match
    our AR to its message.
    """
    if not data.startswith(b"MSH") or len(data) < 9:
        return AckHeader()
    end = len(data)
    for term in (b"\r", b"\n"):
        p = data.find(term)
        if p != -1:
            end = min(end, p)
    line = data[:end].decode("latin-1")
    fsep = line[3]
    f = ["MSH", fsep, *line.split(fsep)[1:]]

    def at(n: int) -> str:
        return f[n].split("^")[0][:199] if n < len(f) else ""

    return AckHeader(
        sending_app=at(3),
        sending_facility=at(4),
        receiving_app=at(5),
        receiving_facility=at(6),
        trigger=f[9].split("^")[1][:3] if len(f) > 9 and "^" in f[9] else "",
        control_id=at(10),
        processing_id=at(11) or "P",
        version=at(12) or "2.5",
    )


@lru_cache(maxsize=1024)
def _msh_parts(
    enc: Encoding,
    our_app: str,
    our_facility: str,
    their_app: str,
    their_facility: str,
    trigger: str,
    processing_id: str,
    version: str,
) -> tuple[str, str, str]:
    """The ACK's MSH around MSH-7 (time) and MSH-10 (control ID); the same for every message
    of one sender, so it is built once. The ACK goes back to the sender: its MSH-3/4 become
    our MSH-5/6 and the other way round."""
    f = enc.field
    c = enc.component
    head = f.join(
        (
            "MSH",
            enc.msh2,
            escape(our_app, enc),
            escape(our_facility, enc),
            escape(their_app, enc),
            escape(their_facility, enc),
            "",
        )
    )
    msg_type = f"ACK{c}{escape(trigger, enc)}{c}ACK" if trigger else "ACK"
    # MSH-11 processing ID and MSH-12 version are echoed from the message.
    end = f"{f}{escape(processing_id, enc)}{f}{escape(version, enc)}"
    return head, f"{f}{f}{msg_type}{f}", end


def build_ack(
    header: AckHeader,
    code: AckCode,
    *,
    now: datetime | str,
    text: str = "",
    error: ErrorCode | None = None,
    error_segment: str = "",
    error_field: int = 0,
    app: str = "SITE_AGENT",
    facility: str = "",
) -> bytes:
    """The ACK for one message, encoded in UTF-8 with the sender's own delimiters."""
    enc = header.encoding
    f = enc.field
    c = enc.component
    ts = now if isinstance(now, str) else now.strftime("%Y%m%d%H%M%S%z")
    head, mid, end = _msh_parts(
        enc,
        header.receiving_app or app,
        header.receiving_facility or facility,
        header.sending_app,
        header.sending_facility,
        header.trigger,
        header.processing_id,
        header.version,
    )
    segments = [f"{head}{ts}{mid}{_PREFIX}{base36(next(_counter))}{end}"]
    msa_text = escape(text[:80], enc)
    segments.append(f.join(("MSA", code.value, escape(header.control_id, enc), msa_text)))
    if error is not None:
        err_text = escape(text or _ERROR_TEXT.get(error, ""), enc)
        severity = "W" if code is AckCode.AA else "E"
        err_code = f"{error.value}{c}{escape(_ERROR_TEXT.get(error, ''), enc)}{c}HL70357"
        # ERR-2 is an ERL: segment ID ^ segment sequence ^ field position.
        location = f"{error_segment}{c}1{c}{error_field}" if error_segment else ""
        segments.append(f.join(("ERR", "", location, err_code, severity, "", "", "", err_text)))
    return ("\r".join(segments) + "\r").encode("utf-8")
