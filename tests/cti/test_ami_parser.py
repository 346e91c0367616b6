"""AMI framing and call tracking on recorded Asterisk 20 transcripts."""

from __future__ import annotations

from typing import Any

import pytest

from cti_bridge.events import CallEvent
from cti_bridge.sources.ami import (
    AmiCallTracker,
    AmiFramer,
    build_action,
    extension_of,
    login_action,
    originate_action,
)

from .conftest import shape, transcript

BASE = {"source": "ami", "line": "main"}


def ringing(ext: str, raw: str, number: str, withheld: str = "", name: str = "") -> dict[str, Any]:
    return {
        "type": "ringing",
        **BASE,
        "extension": ext,
        "caller_raw": raw,
        "number": number,
        "withheld": withheld,
        "caller_name": name,
        "direction": "in",
    }


EXPECTED: dict[str, list[dict[str, Any]]] = {
    "ami_dial_answer.txt": [
        ringing("201", "0312345678", "+81312345678"),
        {"type": "answered", **BASE, "extension": "201"},
        {"type": "ended", **BASE, "answered": True, "reason": "hangup"},
    ],
    "ami_queue.txt": [
        ringing("201", "09012345678", "+819012345678", name="スズキ"),
        ringing("202", "09012345678", "+819012345678", name="スズキ"),
        {"type": "answered", **BASE, "extension": "202"},
        {"type": "ended", **BASE, "answered": True, "reason": "hangup"},
    ],
    "ami_abandoned.txt": [
        ringing("201", "anonymous", "", "private"),
        ringing("202", "anonymous", "", "private"),
        {"type": "ended", **BASE, "answered": False, "reason": "hangup"},
    ],
}
CALL_IDS = {
    "ami_dial_answer.txt": "1700000100.11",
    "ami_queue.txt": "1700000200.21",
    "ami_abandoned.txt": "1700000300.31",
}


def run_chunks(chunks: list[bytes], **kw: Any) -> tuple[list[CallEvent], AmiFramer]:
    framer = AmiFramer()
    tracker = AmiCallTracker("ami", "main", **kw)
    events: list[CallEvent] = []
    buffer = b""
    for chunk in chunks:
        messages, buffer = framer.feed(buffer + chunk)
        for msg in messages:
            events += tracker.handle(msg)
    assert buffer == b""
    assert tracker.calls == {}  # every call was cleaned up at its hang-up
    return events, framer


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_in_one_piece(name: str) -> None:
    events, framer = run_chunks([transcript(name)])
    assert framer.banner == "Asterisk Call Manager/9.0.0"
    assert [shape(e) for e in events] == EXPECTED[name]
    assert {e.call_id for e in events} == {CALL_IDS[name]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_byte_by_byte(name: str) -> None:
    data = transcript(name)
    events, _ = run_chunks([data[i : i + 1] for i in range(len(data))])
    assert [shape(e) for e in events] == EXPECTED[name]


def test_split_at_every_position_of_the_opening() -> None:
    # Banner, login response and the first events: every cut in the first 1500 bytes.
    data = transcript("ami_dial_answer.txt")
    for cut in range(1, 1500):
        events, framer = run_chunks([data[:cut], data[cut:]])
        assert [shape(e) for e in events] == EXPECTED["ami_dial_answer.txt"], f"split at {cut}"
        assert framer.banner == "Asterisk Call Manager/9.0.0"


def test_inbound_contexts_filter() -> None:
    data = transcript("ami_dial_answer.txt")
    events, _ = run_chunks([data], inbound_contexts=["from-pstn"])
    assert events == []
    events, _ = run_chunks([data], inbound_contexts=["from-trunk"])
    assert len(events) == 3


def test_framer_without_banner_and_with_lf_only() -> None:
    framer = AmiFramer()
    messages, rest = framer.feed(b"Response: Success\nActionID: 1\nMessage: ok\n\nEvent: Pi")
    assert messages == [{"response": "Success", "actionid": "1", "message": "ok"}]
    assert rest == b"Event: Pi"
    assert framer.banner == ""


@pytest.mark.parametrize(
    ("channel", "ext"),
    [
        ("PJSIP/201-0000002a", "201"),
        ("SIP/201-00000001", "201"),
        ("Local/201@from-queue-00000001;1", "201"),
        ("Local/201@from-queue/n", "201"),
        ("PJSIP/201", "201"),
        ("PJSIP/ntt-hikari-0000000b", "ntt-hikari"),
        ("IAX2/305-12345678", "305"),
        ("", ""),
        ("nonsense", ""),
    ],
)
def test_extension_of(channel: str, ext: str) -> None:
    assert extension_of(channel) == ext


def test_actions() -> None:
    assert login_action("yebisu", "s3cret", "a1") == (
        b"Action: Login\r\nActionID: a1\r\nUsername: yebisu\r\nSecret: s3cret\r\n"
        b"Events: call,agent\r\n\r\n"
    )
    action = originate_action(
        action_id="yebisu-1",
        channel="PJSIP/201",
        exten="0312345678",
        context="from-internal",
        caller_id='"0312345678" <0312345678>',
        timeout_ms=30000,
        channel_id="yebisu-1",
    ).decode()
    assert action.startswith("Action: Originate\r\n") and action.endswith("\r\n\r\n")
    for line in (
        "Channel: PJSIP/201",
        "Exten: 0312345678",
        "Context: from-internal",
        "Priority: 1",
        "Async: true",
        "ChannelId: yebisu-1",
        "Timeout: 30000",
    ):
        assert f"\r\n{line}\r\n" in action
    with pytest.raises(ValueError, match="line break"):
        build_action("Originate", [("Channel", "PJSIP/201\r\nAction: Logoff")])


def test_originated_call_is_outbound_not_ringing() -> None:
    framer = AmiFramer()
    framer.banner = ""
    tracker = AmiCallTracker("ami", "main")
    tracker.mark_originated("yebisu-abc", "201")
    data = transcript("ami_originate_events.txt").replace(b"{call_id}", b"yebisu-abc")
    messages, rest = framer.feed(data)
    assert rest == b""
    events = [e for m in messages for e in tracker.handle(m)]
    assert [shape(e) for e in events] == [
        {"type": "answered", **BASE, "extension": "201"},
        {"type": "ended", **BASE, "answered": True, "reason": "hangup"},
    ]
    assert {e.call_id for e in events} == {"yebisu-abc"}


def test_originate_failure_ends_the_call() -> None:
    tracker = AmiCallTracker("ami", "main")
    tracker.mark_originated("yebisu-x", "201")
    events = tracker.handle(
        {
            "event": "OriginateResponse",
            "actionid": "yebisu-x",
            "response": "Failure",
            "reason": "1",
        }
    )
    assert [shape(e) for e in events] == [
        {"type": "ended", **BASE, "answered": False, "reason": "originate_failed"}
    ]
