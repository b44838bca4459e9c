"""A focused HL7 v2 ER7 ("pipe and hat") parser and encoder.

Pure functions, no I/O. Written for speed on the ingest hot path: a message is split into
segments and fields eagerly (``str.split`` runs in C), components and escapes are resolved only
when a value is read.

Rules followed (HL7 v2.5 chapter 2, unchanged in substance through v2.8):
- The field separator is the character right after ``MSH`` (MSH-1); MSH-2 lists the component,
  repetition, escape and sub-component separators, and since v2.7 the truncation character.
  Interface engines do send other characters than ``|^~\\&``, so nothing here is hard-wired.
- MSH-1 *is* the field separator, so MSH field numbering is shifted by one compared with a plain
  split: ``MSH|^~\\&|APP`` has MSH-1 = ``|``, MSH-2 = ``^~\\&`` and MSH-3 = ``APP``.
- Segments end with ``\\r``; many senders and files use ``\\n`` or ``\\r\\n``, which we accept.
- Escape sequences (2.7.3): ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\``, ``\\Xhh..\\`` hex data,
  ``\\.br\\`` line break; highlighting (``\\H\\``, ``\\N\\``) and character-set switches
  (``\\Cxxyy\\``, ``\\Mxxyyzz\\``) carry no data and are dropped.
- Z-segments are kept in the parse but nothing reads them: they are site-specific.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "DEFAULT_ENCODING",
    "Encoding",
    "Message",
    "ParseError",
    "Segment",
    "decode_bytes",
    "escape",
    "parse",
    "parse_bytes",
    "unescape",
]


class ParseError(ValueError):
    """The bytes are not an HL7 v2 ER7 message we can read (answered with MSA-1 ``AR``)."""


@dataclass(frozen=True, slots=True)
class Encoding:
    """The delimiters declared by MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""

    @property
    def msh2(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


DEFAULT_ENCODING = Encoding()

# Segment IDs are three upper-case letters or digits (Z-segments included).
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}\Z")
_SEGMENT_END = re.compile(r"\r\n|\r|\n")
# MSH-18 values (HL7 table 0211) and the Python codecs that read them. Anything else falls back
# to UTF-8 (a superset of the ASCII default), then Latin-1 which can decode any byte string.
_CHARSETS = {
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/5": "iso8859-5",
    "8859/7": "iso8859-7",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UNICODE": "utf-8",
    "ISO IR100": "latin-1",
    "ISO IR6": "ascii",
}


def _encoding_from_msh(text: str) -> Encoding:
    if len(text) < 8 or not text.startswith("MSH"):
        raise ParseError("message does not start with an MSH segment")
    field = text[3]
    end = text.find(field, 4)
    return _encoding(field, text[4:end] if end != -1 else text[4:])


@lru_cache(maxsize=64)
def _encoding(field: str, msh2: str) -> Encoding:
    """Validated delimiters; cached, since a sender always uses the same ones."""
    # v2.5 requires exactly four encoding characters, v2.7 allows a fifth (truncation).
    if len(msh2) not in (4, 5):
        raise ParseError(f"MSH-2 must hold 4 or 5 encoding characters, got {len(msh2)}")
    chars = field + msh2
    if len(set(chars)) != len(chars):
        raise ParseError("MSH-1/MSH-2 delimiters are not distinct")
    for ch in chars:
        if ch.isalnum() or ch.isspace() or not ch.isprintable():
            raise ParseError(f"invalid delimiter {ch!r} in MSH-1/MSH-2")
    return Encoding(
        field=field,
        component=msh2[0],
        repetition=msh2[1],
        escape=msh2[2],
        subcomponent=msh2[3],
        truncation=msh2[4] if len(msh2) == 5 else "",
    )


def _hex_to_text(data: str) -> str:
    try:
        return bytes.fromhex(data).decode("utf-8", errors="replace")
    except ValueError:
        return ""


def unescape(value: str, enc: Encoding = DEFAULT_ENCODING) -> str:
    """Resolve HL7 escape sequences in a leaf value (component or sub-component)."""
    esc = enc.escape
    if not esc or esc not in value:
        return value
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        j = value.find(esc, i)
        if j == -1:
            out.append(value[i:])
            break
        out.append(value[i:j])
        k = value.find(esc, j + 1)
        if k == -1:
            # An unterminated escape is data, not a sequence: keep it literally.
            out.append(value[j:])
            break
        seq = value[j + 1 : k]
        if seq == "F":
            out.append(enc.field)
        elif seq == "S":
            out.append(enc.component)
        elif seq == "T":
            out.append(enc.subcomponent)
        elif seq == "R":
            out.append(enc.repetition)
        elif seq == "E":
            out.append(esc)
        elif seq == "P":
            out.append(enc.truncation)
        elif seq == ".br":
            out.append("\n")
        elif seq[:1] == "X":
            out.append(_hex_to_text(seq[1:]))
        elif seq in ("H", "N") or seq[:1] in ("C", "M") or seq[:1] == ".":
            pass  # highlighting, charset switches and formatting commands carry no data
        else:
            # Unknown sequence: keep it as it was sent rather than lose characters.
            out.append(value[j : k + 1])
        i = k + 1
    return "".join(out)


def escape(value: str, enc: Encoding = DEFAULT_ENCODING) -> str:
    """Escape a leaf value so that it can be placed in a component or sub-component."""
    esc = enc.escape
    if esc in value:
        value = value.replace(esc, f"{esc}E{esc}")
    for ch, code in (
        (enc.field, "F"),
        (enc.component, "S"),
        (enc.subcomponent, "T"),
        (enc.repetition, "R"),
        (enc.truncation, "P"),
    ):
        if ch and ch in value:
            value = value.replace(ch, f"{esc}{code}{esc}")
    if "\r" in value or "\n" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", f"{esc}.br{esc}")
    return value


class Segment:
    """One segment; ``fields[n]`` is field n in HL7 numbering (``fields[0]`` is the segment ID)."""

    __slots__ = ("enc", "fields", "name")

    def __init__(self, name: str, fields: list[str], enc: Encoding) -> None:
        self.name = name
        self.fields = fields
        self.enc = enc

    def __repr__(self) -> str:
        return f"Segment({self.enc.field.join(self.fields)!r})"

    def raw(self, n: int) -> str:
        """Field n as sent (escapes, repetitions and components untouched)."""
        f = self.fields
        return f[n] if n < len(f) else ""

    def repetitions(self, n: int) -> list[str]:
        raw = self.raw(n)
        if not raw:
            return []
        # MSH-2 contains the repetition character itself: never split it.
        if self.name == "MSH" and n <= 2:
            return [raw]
        return raw.split(self.enc.repetition)

    def get(self, n: int, component: int = 1, sub: int = 1, rep: int = 0) -> str:
        """The unescaped value of field n, component, sub-component (1-based), repetition rep.

        HL7 ``""`` (two double quotes) means "delete this value" for updates; for a census we
        treat it as empty.
        """
        f = self.fields
        if n >= len(f):
            return ""
        raw = f[n]
        if not raw:
            return ""
        if n <= 2 and self.name == "MSH":
            return raw
        enc = self.enc
        if rep or enc.repetition in raw:
            reps = raw.split(enc.repetition)
            if rep >= len(reps):
                return ""
            raw = reps[rep]
        if enc.component in raw:
            comps = raw.split(enc.component)
            if component > len(comps):
                return ""
            raw = comps[component - 1]
        elif component != 1:
            return ""
        if enc.subcomponent in raw:
            subs = raw.split(enc.subcomponent)
            if sub > len(subs):
                return ""
            raw = subs[sub - 1]
        elif sub != 1:
            return ""
        if raw == '""':
            return ""
        return unescape(raw, enc) if enc.escape in raw else raw

    def components(self, n: int, rep: int = 0) -> list[str]:
        """All components of one repetition of field n, unescaped (first sub-component each)."""
        f = self.fields
        if n >= len(f) or not f[n]:
            return []
        raw = f[n]
        enc = self.enc
        if enc.repetition in raw and not (n <= 2 and self.name == "MSH"):
            reps = raw.split(enc.repetition)
            if rep >= len(reps):
                return []
            raw = reps[rep]
        elif rep:
            return []
        comps = raw.split(enc.component)
        if enc.subcomponent in raw or enc.escape in raw:
            sub, esc = enc.subcomponent, enc.escape
            for i, c in enumerate(comps):
                if sub in c:
                    c = c.split(sub, 1)[0]
                comps[i] = unescape(c, enc) if esc in c else c
        return comps


class Message:
    """A parsed ER7 message: its segments in order and its delimiters."""

    __slots__ = ("enc", "segments", "text")

    def __init__(self, segments: list[Segment], enc: Encoding, text: str) -> None:
        self.segments = segments
        self.enc = enc
        self.text = text

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def segment(self, name: str) -> Segment | None:
        for s in self.segments:
            if s.name == name:
                return s
        return None

    def all(self, name: str) -> Iterator[Segment]:
        return (s for s in self.segments if s.name == name)


def decode_bytes(data: bytes) -> str:
    """Decode a message body using MSH-18 (HL7 table 0211) when declared.

    Never fails: an undecodable body is read as Latin-1 so the parser can still answer (and the
    raw bytes are stored as received anyway).
    """
    codec = "utf-8"
    if len(data) > 8 and data[:3] == b"MSH":
        head_end = len(data)
        for term in (b"\r", b"\n"):
            p = data.find(term)
            if p != -1:
                head_end = min(head_end, p)
        fsep = data[3:4]
        msh = data[:head_end].split(fsep)
        # MSH-18 is at index 17 of a plain split because MSH-1 is the separator itself.
        if len(msh) > 17:
            declared = msh[17].split(b"~")[0].decode("ascii", errors="ignore").strip().upper()
            codec = _CHARSETS.get(declared, "utf-8")
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return data.decode("latin-1")


def parse(text: str) -> Message:
    """Parse ER7 text. Raises :class:`ParseError` when it is not an HL7 v2 message."""
    if text.startswith("\ufeff"):
        text = text[1:]
    enc = _encoding_from_msh(text)
    fsep = enc.field
    segments: list[Segment] = []
    lines = _SEGMENT_END.split(text) if "\n" in text else text.split("\r")
    for line in lines:
        if not line:
            continue
        fields = line.split(fsep)
        name = fields[0]
        if len(name) != 3 or not _SEGMENT_ID.match(name):
            stripped = name.strip()
            if not stripped and len(fields) == 1:
                continue  # whitespace between segments, as some files carry
            raise ParseError(f"invalid segment id {name[:10]!r}")
        if name == "MSH" and not segments:
            # Re-number so that fields[1] is MSH-1 (the separator) and fields[2] MSH-2.
            fields = ["MSH", fsep, *fields[1:]]
        segments.append(Segment(name, fields, enc))
    if not segments or segments[0].name != "MSH":
        raise ParseError("message does not start with an MSH segment")
    return Message(segments, enc, text)


def parse_bytes(data: bytes) -> Message:
    return parse(decode_bytes(data))
