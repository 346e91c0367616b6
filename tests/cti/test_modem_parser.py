"""Hayes modem caller ID parser, fed with recorded transcripts."""

from __future__ import annotations

from typing import Any

import pytest

from cti_bridge.events import CallEnded, CallEvent, CallRinging
from cti_bridge.sources.modem import ModemParser

from .conftest import shape, transcript


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def parser(clock: Clock | None = None) -> ModemParser:
    return ModemParser("modem", "main", ring_end_s=8.0, monotonic=clock or Clock())


def ringing(raw: str, number: str, withheld: str = "", name: str = "") -> dict[str, Any]:
    return {
        "type": "ringing",
        "source": "modem",
        "line": "main",
        "extension": None,
        "caller_raw": raw,
        "number": number,
        "withheld": withheld,
        "caller_name": name,
        "direction": "in",
    }


ENDED = {
    "type": "ended",
    "source": "modem",
    "line": "main",
    "answered": False,
    "reason": "ring_stopped",
}

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "modem_jp_nd.txt": [
        ringing("0312345678", "+81312345678"),
        ENDED,
        ringing("P", "", "private"),
        ENDED,
    ],
    "modem_na.txt": [
        ringing("09012345678", "+819012345678", name="SUZUKI TARO"),
        ENDED,
        ringing("O", "", "out_of_area"),
        ENDED,
    ],
    "modem_variants.txt": [
        ringing("0952326611", "+81952326611"),
        ENDED,
        ringing("０３ー１２３４ー５６７８", "+81312345678"),
        ENDED,
        ringing("0120-123-456", "+81120123456", name="YAMADA"),
        ENDED,
        ringing("+81312345679", "+81312345679", name="SATO"),
        ENDED,
        ringing("P", "", "private"),
        ENDED,
    ],
    "modem_no_cid.txt": [ringing("", "", "unavailable"), ENDED],
}


def run_chunks(chunks: list[bytes]) -> list[CallEvent]:
    """Feed chunks like a serial port delivers them, then let all timers expire."""
    p = parser()
    events: list[CallEvent] = []
    buffer = b""
    for chunk in chunks:
        res = p.feed(buffer + chunk)
        buffer = res.leftover
        events += res.events
    assert buffer == b""
    events += p.check_timeout(now=1e9)
    return events


def check_call_ids(events: list[CallEvent]) -> None:
    """Each ringing has a fresh call id and its end carries the same one."""
    ids = [e.call_id for e in events]
    assert ids[0::2] == ids[1::2]
    assert len(set(ids)) == len(events) // 2


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_in_one_piece(name: str) -> None:
    events = run_chunks([transcript(name)])
    assert [shape(e) for e in events] == EXPECTED[name]
    check_call_ids(events)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_split_at_every_position(name: str) -> None:
    data = transcript(name)
    for cut in range(1, len(data)):
        events = run_chunks([data[:cut], data[cut:]])
        assert [shape(e) for e in events] == EXPECTED[name], f"split at {cut}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_byte_by_byte(name: str) -> None:
    data = transcript(name)
    events = run_chunks([data[i : i + 1] for i in range(len(data))])
    assert [shape(e) for e in events] == EXPECTED[name]


def test_ringing_once_per_call_and_end_after_quiet_rings() -> None:
    clock = Clock()
    p = parser(clock)
    res = p.feed(b"\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 0312345678\r\n\r\n")
    assert [type(e) for e in res.events] == [CallRinging]
    call_id = res.events[0].call_id
    for t in (1.0, 4.0, 7.0):
        clock.now = t
        assert p.feed(b"RING\r\n").events == []
        assert p.check_timeout() == []
    clock.now = 7.0 + 7.9
    assert p.check_timeout() == []
    clock.now = 7.0 + 8.0
    ended = p.check_timeout()
    assert [type(e) for e in ended] == [CallEnded]
    assert ended[0].call_id == call_id
    assert not p.active


def test_pending_block_is_flushed_after_a_quiet_moment() -> None:
    clock = Clock()
    p = parser(clock)
    res = p.feed(b"NMBR = 0312345678\r\n")
    assert res.events == []  # NAME might follow
    clock.now = 0.1
    assert p.check_timeout() == []
    clock.now = 0.3
    [event] = p.check_timeout()
    assert isinstance(event, CallRinging)
    assert event.number == "+81312345678"


def test_single_ring_without_caller_id_reports_nothing() -> None:
    clock = Clock()
    p = parser(clock)
    assert p.feed(b"RING\r\n").events == []
    clock.now = 100
    assert p.check_timeout() == []
    assert not p.active


def test_modem_chatter_is_ignored() -> None:
    p = parser()
    res = p.feed(b"ATZ\r\r\nOK\r\nAT+VCID=1\r\r\nERROR\r\nNO CARRIER\r\n")
    assert res.events == [] and res.leftover == b""
    assert not p.active


def test_cp932_name() -> None:
    p = parser()
    res = p.feed("NMBR = 0312345678\r\nNAME = ｽｽﾞｷ\r\n".encode("cp932"))
    [event] = res.events
    assert isinstance(event, CallRinging)
    assert event.caller_name == "スズキ"


def test_clip_international_type_without_plus() -> None:
    [event] = parser().feed(b'+CLIP: "81312345678",145,,,,0\r\n').events
    assert isinstance(event, CallRinging)
    assert event.number == "+81312345678"
