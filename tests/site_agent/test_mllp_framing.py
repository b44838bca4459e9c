"""MLLP framing: split reads, several frames per read, junk, oversize and truncated frames."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from site_agent.hl7.mllp import FrameKind, MllpDecoder, frame


def test_one_frame() -> None:
    d = MllpDecoder(100)
    [f] = d.feed(frame(b"MSH|x"))
    assert (f.kind, f.payload) == (FrameKind.MESSAGE, b"MSH|x")


def test_several_frames_in_one_read_and_keep_alive_newlines() -> None:
    d = MllpDecoder(100)
    out = d.feed(frame(b"a") + b"\r\n" + frame(b"b") + frame(b"c"))
    assert [f.payload for f in out] == [b"a", b"b", b"c"]
    assert all(f.kind is FrameKind.MESSAGE for f in out)


def test_end_block_split_across_reads() -> None:
    d = MllpDecoder(100)
    assert d.feed(b"\x0bMSH|1\x1c") == []
    [f] = d.feed(b"\r")
    assert f.payload == b"MSH|1"


def test_junk_outside_frames_is_reported() -> None:
    d = MllpDecoder(100)
    out = d.feed(b"garbage" + frame(b"ok"))
    assert [f.kind for f in out] == [FrameKind.JUNK, FrameKind.MESSAGE]
    assert out[0].payload == b"garbage"


def test_oversize_frame_keeps_a_prefix_and_resyncs() -> None:
    d = MllpDecoder(10)
    out = d.feed(b"\x0b" + b"MSH|" + b"x" * 50)
    out += d.feed(b"y" * 50 + b"\x1c")
    out += d.feed(b"\r" + frame(b"next"))
    assert [f.kind for f in out] == [FrameKind.OVERSIZE, FrameKind.MESSAGE]
    assert out[0].payload == b"MSH|xxxxxx"
    assert out[0].size == 104
    assert out[1].payload == b"next"


def test_start_block_inside_a_frame_truncates_the_first() -> None:
    d = MllpDecoder(100)
    out = d.feed(b"\x0bhalf a mess" + frame(b"whole"))
    assert [(f.kind, f.payload) for f in out] == [
        (FrameKind.TRUNCATED, b"half a mess"),
        (FrameKind.MESSAGE, b"whole"),
    ]


def test_close_mid_frame_reports_the_partial_frame() -> None:
    d = MllpDecoder(100)
    assert d.feed(b"\x0bMSH|partial") == []
    [f] = d.close()
    assert (f.kind, f.payload) == (FrameKind.TRUNCATED, b"MSH|partial")


payloads = st.lists(
    st.binary(max_size=60).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b"")),
    min_size=1,
    max_size=8,
)


@given(payloads, st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
@settings(max_examples=300)
def test_any_chunking_yields_the_same_frames(messages: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(m) for m in messages)
    d = MllpDecoder(1000)
    out = []
    pos = 0
    i = 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        out += d.feed(stream[pos : pos + step])
        pos += step
        i += 1
    assert [f.payload for f in out if f.kind is FrameKind.MESSAGE] == messages


@given(st.binary(max_size=500), st.integers(min_value=1, max_value=64))
@settings(max_examples=300)
def test_random_bytes_never_crash_and_stay_bounded(data: bytes, chunk: int) -> None:
    d = MllpDecoder(50)
    for i in range(0, len(data), chunk):
        for f in d.feed(data[i : i + chunk]):
            assert len(f.payload) <= 50
    for f in d.close():
        assert len(f.payload) <= 50
