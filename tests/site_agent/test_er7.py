"""The ER7 parser: delimiters from MSH-1/2, repetitions, escapes, segment ends; properties."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from site_agent.hl7.er7 import (
    DEFAULT_ENCODING,
    Encoding,
    ParseError,
    escape,
    parse,
    parse_bytes,
    unescape,
)


def test_msh_fields_are_numbered_as_in_the_standard() -> None:
    m = parse("MSH|^~\\&|APP|FAC|RAPP|RFAC|20250101||ADT^A01^ADT_A01|42|P|2.5\r")
    assert m.msh.get(1) == "|"
    assert m.msh.get(2) == "^~\\&"
    assert m.msh.get(3) == "APP"
    assert m.msh.get(9, 2) == "A01"
    assert m.msh.get(10) == "42"
    assert m.msh.get(12) == "2.5"


def test_delimiters_come_from_msh_1_and_msh_2() -> None:
    text = "MSH#$%@*#APP#FAC###20250101##ADT$A02#9#P#2.3\rPID#1##M1$$$GEN$MR%M2##Doe$Jo\r"
    m = parse(text)
    assert m.enc == Encoding("#", "$", "%", "@", "*")
    pid = m.segment("PID")
    assert pid is not None
    assert pid.get(3) == "M1"
    assert pid.get(3, rep=1) == "M2"
    assert pid.get(3, 5) == "MR"
    assert pid.get(5, 2) == "Jo"
    assert m.msh.get(9, 2) == "A02"


@pytest.mark.parametrize("end", ["\r", "\n", "\r\n"])
def test_segment_ends_cr_lf_or_crlf(end: str) -> None:
    text = end.join(["MSH|^~\\&|A|B|||2025||ADT^A01|1|P|2.5", "EVN|A01", "PID|1||X"]) + end
    m = parse(text)
    assert [s.name for s in m.segments] == ["MSH", "EVN", "PID"]


def test_escapes_are_resolved_on_read() -> None:
    m = parse(
        "MSH|^~\\&|A|B|||2025||ADT^A01|1|P|2.5\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X41\\\\.br\\g\r"
    )
    nte = m.segment("NTE")
    assert nte is not None
    assert nte.get(3) == "a|b^c&d~e\\fA\ng"


def test_z_segments_are_kept_but_harmless() -> None:
    m = parse("MSH|^~\\&|A|B|||2025||ADT^A01|1|P|2.5\rZPV|whatever|^~\r")
    assert m.segment("ZPV") is not None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "PID|1",
        "MSH",
        "MSH|^~|A",  # too few encoding characters
        "MSH|^^\\&|A|B",  # repeated delimiter
        "MSHa^~\\&|A|B|C",  # alphanumeric field separator
        "MSH|^~\\&|A\rP!D|x\r",  # invalid segment id
    ],
)
def test_unreadable_input_raises_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse(text)


def test_charset_from_msh_18() -> None:
    raw = "MSH|^~\\&|A|B|||2025||ADT^A01|1|P|2.5|||||8859/1\rPID|1||X||Müller^Zoë\r".encode(
        "latin-1"
    )
    m = parse_bytes(raw)
    pid = m.segment("PID")
    assert pid is not None
    assert pid.get(5) == "Müller"


def test_undecodable_bytes_still_parse() -> None:
    raw = b"MSH|^~\\&|A|B|||2025||ADT^A01|1|P|2.5\rPID|1||X||\xff\xfe^Y\r"
    assert parse_bytes(raw).segment("PID") is not None


# --- properties -------------------------------------------------------------------------------

values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x0b\x1c"),
    max_size=40,
)


@given(values)
def test_escape_then_unescape_is_identity(value: str) -> None:
    expected = value.replace("\r\n", "\n").replace("\r", "\n")
    assert unescape(escape(value)) == expected


@given(st.lists(st.lists(values, min_size=1, max_size=4), min_size=1, max_size=6))
@settings(max_examples=200)
def test_values_survive_a_round_trip_through_a_message(fields: list[list[str]]) -> None:
    # Each inner list is the components of one field of a Z-segment.
    enc = DEFAULT_ENCODING
    body = "|".join("^".join(escape(c, enc) for c in comps) for comps in fields)
    m = parse(f"MSH|^~\\&|A|B|||2025||ADT^A01|1|P|2.5\rZZZ|{body}\r")
    seg = m.segment("ZZZ")
    assert seg is not None
    for n, comps in enumerate(fields, start=1):
        for c, value in enumerate(comps, start=1):
            got = seg.get(n, c)
            expected = value.replace("\r\n", "\n").replace("\r", "\n")
            # HL7 '""' means "delete": the parser reads it as empty.
            assert got == ("" if expected == '""' else expected)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_bytes(data)


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_arbitrary_text_after_a_valid_msh_never_crashes(tail: str) -> None:
    try:
        m = parse("MSH|^~\\&|A|B|||2025||ADT^A01|1|P|2.5\r" + tail)
    except ParseError:
        return
    for seg in m.segments:
        for n in range(len(seg.fields) + 2):
            seg.get(n)
            seg.components(n)
