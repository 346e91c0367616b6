"""Number Display adapter frames: parity masking, ACK/NAK, codes, leftovers."""

from __future__ import annotations

from cti_bridge.events import CallEvent, CallRinging
from cti_bridge.sources.nd import ACK, NAK, NdParser, parse_frame

from .conftest import shape, transcript

EXPECTED_CALLERS = [
    ("0312345678", "+81312345678", ""),
    ("0952326611", "+81952326611", ""),
    ("09012345678", "+819012345678", ""),
    ("P", "", "private"),
    ("O", "", "out_of_area"),
    ("S", "", "out_of_area"),
    ("C", "", "payphone"),
    ("E", "", "error"),
    ("0312340000", "+81312340000", ""),
    ("05012345678", "+815012345678", ""),
]
EXPECTED_REPLY = ACK * 8 + NAK + ACK * 3


def parser() -> NdParser:
    return NdParser("nd", "main", monotonic=lambda: 0.0)


def run_chunks(chunks: list[bytes]) -> tuple[list[CallEvent], bytes]:
    p = parser()
    events: list[CallEvent] = []
    reply = b""
    buffer = b""
    for chunk in chunks:
        res = p.feed(buffer + chunk)
        buffer = res.leftover
        events += res.events
        reply += res.reply
    assert buffer == b""
    return events, reply


def callers(events: list[CallEvent]) -> list[tuple[str, str, str]]:
    out = []
    for e in events:
        assert isinstance(e, CallRinging)
        assert e.extension is None and e.line == "main" and e.source == "nd"
        out.append((e.caller_raw, e.number, e.withheld))
    return out


def test_transcript_in_one_piece() -> None:
    events, reply = run_chunks([transcript("nd_frames.bin")])
    assert callers(events) == EXPECTED_CALLERS
    assert reply == EXPECTED_REPLY
    assert len({e.call_id for e in events}) == len(events)


def test_transcript_split_at_every_position() -> None:
    data = transcript("nd_frames.bin")
    expected = [shape(e) for e in run_chunks([data])[0]]
    for cut in range(1, len(data)):
        events, reply = run_chunks([data[:cut], data[cut:]])
        assert [shape(e) for e in events] == expected, f"split at {cut}"
        assert reply == EXPECTED_REPLY, f"split at {cut}"


def test_transcript_byte_by_byte() -> None:
    data = transcript("nd_frames.bin")
    events, reply = run_chunks([data[i : i + 1] for i in range(len(data))])
    assert callers(events) == EXPECTED_CALLERS
    assert reply == EXPECTED_REPLY


def test_frame_layouts() -> None:
    packed = parse_frame(b"0321314050312345678")
    assert packed is not None and (packed.mmdd, packed.hhmm, packed.number) == (
        "0321",
        "1405",
        "0312345678",
    )
    no_weekday = parse_frame(b"0321 1405 03-1234-5678")
    assert no_weekday is not None and no_weekday.number == "0312345678"
    for bad in (b"", b"hello", b"0321 3 1405 03X", b"1301 3 1405 P", b"0321 3 2400 P", b"\xff"):
        assert parse_frame(bad) is None, bad


def test_oversized_frame_is_nakked_and_dropped() -> None:
    p = parser()
    res = p.feed(b"\x02" + b"1" * 100)
    assert res.reply == NAK and res.leftover == b"" and res.events == []


def test_resent_frame_after_dedupe_window_is_a_new_call() -> None:
    now = [0.0]
    p = NdParser("nd", "main", monotonic=lambda: now[0])
    frame = b"\x020321 3 1405 0312345678\x03"
    assert len(p.feed(frame).events) == 1
    now[0] = 5.0
    assert p.feed(frame).events == []
    now[0] = 20.0
    assert len(p.feed(frame).events) == 1
