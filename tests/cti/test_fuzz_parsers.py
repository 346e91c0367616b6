"""Property-based fuzzing of every caller-ID parser and the webhook body (hypothesis).

Arbitrary bytes and mutated recorded transcripts never raise anything but the parser's own
declared error type (most parsers declare none: bad input is dropped, logged, or NAKed), and
a byte stream fed in arbitrary chunks (leftover passed back) gives the same events as fed
whole. ``make test`` runs a few examples each (profile ``dev``); ``make fuzz`` many
(``HYPOTHESIS_PROFILE=fuzz``); profiles are in ``tests/cti/conftest.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cti_bridge.events import CallEvent
from cti_bridge.sources.ami import AmiCallTracker, AmiFramer
from cti_bridge.sources.modem import ModemParser
from cti_bridge.sources.nd import NdParser, parse_frame
from cti_bridge.sources.sip import SipEndpoint, SipParseError, caller_of, parse_message
from cti_bridge.sources.webhook import WebhookError, parse_webhook

from .conftest import transcript

AT = datetime(2025, 3, 21, 5, 5, tzinfo=UTC)
PEER = ("192.0.2.1", 5060)

SIP = [
    transcript(name)
    for name in (
        "sip_invite_pai.txt",
        "sip_invite_privacy.txt",
        "sip_invite_payphone.txt",
        "sip_invite_compact.txt",
        "sip_invite_anon_pai.txt",
        "sip_cancel.txt",
        "sip_cancel_elsewhere.txt",
        "sip_options.txt",
    )
]
AMI = [
    transcript(n)
    for n in (
        "ami_dial_answer.txt",
        "ami_queue.txt",
        "ami_abandoned.txt",
        "ami_originate_events.txt",
    )
]
MODEM = [
    transcript(n)
    for n in ("modem_jp_nd.txt", "modem_na.txt", "modem_no_cid.txt", "modem_variants.txt")
]
ND = [transcript("nd_frames.bin")]
WEBHOOK = [
    json.dumps(b).encode()
    for b in (
        {"event": "ringing", "call_id": "c-1", "from": "03-1234-5678", "extension": "201",
         "at": "2025-03-21T14:05:00+09:00"},
        {"event": "ringing", "call_id": "c-2", "from": "", "privacy": True, "extension": None},
        {"event": "answered", "call_id": "c-1", "extension": "201"},
        {"event": "ended", "call_id": "c-1", "answered": True, "reason": "hangup"},
        {"event": "missed", "call_id": "c-3"},
        {"event": "dialing", "call_id": "c-4", "extension": "201", "to": "0312345678"},
    )
]  # fmt: skip

# Bytes a hostile or broken device likes to send: digits of other scripts, NUL, bare CR,
# parity bits, UTF-8 fragments, separators.
NASTY = [
    b"\x00", b"\r", b"\n", b"\r\n", b"\x02", b"\x03", b"\xff", b"\x80", b"\xc2\xb2", b"\xc2\xb9",
    "١".encode(), "０".encode(), "－".encode(), b":", b";", b",", b'"', b"<", b">", b"@", b" ",
    b"\t", b"9" * 30, b"=", b"+", b"-", b"P", b"anonymous", b"\r\n\r\n", b"%", b"%2", b"[",
    b"\xed\xa0\x80", b"sip:", b"tel:", b"Content-Length: ", b"CSeq: ", b"RING",
]  # fmt: skip


def _mutate(data: bytes, edits: list[tuple[int, int, int, bytes]]) -> bytes:
    """Apply (kind, position, length, bytes) edits: 0 insert, 1 delete, 2 replace, 3 repeat."""
    out = bytearray(data)
    for kind, pos, length, chunk in edits:
        at = pos % (len(out) + 1)
        if kind == 0:
            out[at:at] = chunk
        elif kind == 1:
            del out[at : at + length]
        elif kind == 2:
            out[at : at + len(chunk)] = chunk
        else:
            out[at:at] = out[at : at + length] * 2
    return bytes(out)


def mutated(corpus: list[bytes]) -> st.SearchStrategy[bytes]:
    edit = st.tuples(
        st.integers(0, 3),
        st.integers(0, 10_000),
        st.integers(1, 64),
        st.one_of(st.sampled_from(NASTY), st.binary(max_size=16)),
    )
    return st.builds(_mutate, st.sampled_from(corpus), st.lists(edit, max_size=8))


def streams(corpus: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=600),
        mutated(corpus),
        st.lists(st.sampled_from(NASTY + corpus), max_size=12).map(b"".join),
    )


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def shape(events: list[CallEvent]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in events]


def counter(prefix: str) -> Callable[[], str]:
    n = itertools.count(1)
    return lambda: f"{prefix}-{next(n)}"


FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- SIP -------------------------------------------------------------------------------------


@FUZZ
@given(streams(SIP))
@example(b"INVITE sip:201@h SIP/2.0\r\nCall-ID: x\r\nCSeq: \xc2\xb2 INVITE\r\n\r\n")
@example(b"INVITE sip:201@h SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nl: \xc2\xb9\r\n\r\n")
def test_sip_parse_raises_only_its_own_error(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError:
        return
    with contextlib.suppress(SipParseError):
        msg.cseq  # noqa: B018 - the property parses
    if msg.method == "INVITE":
        caller_of(msg)


@FUZZ
@given(st.lists(streams(SIP), min_size=1, max_size=6))
def test_sip_endpoint_never_raises_and_answers_sanely(datagrams: list[bytes]) -> None:
    ep = SipEndpoint("sip", "main", final_after_s=5, clock=lambda: AT)
    for data in [*SIP[:1], *datagrams, *SIP]:
        res = ep.handle(data, PEER)
        for response in res.responses:
            assert response.startswith(b"SIP/2.0 ") and response.endswith(b"\r\n\r\n")
        for event in res.events:
            assert event.source == "sip" and event.call_id
    for call_id in list(ep.calls):
        ep.final(call_id)
        ep.retransmit(call_id)


# -- AMI -------------------------------------------------------------------------------------


def ami_run(chunks: list[bytes]) -> tuple[list[dict[str, str]], list[dict[str, Any]], bytes]:
    framer = AmiFramer()
    tracker = AmiCallTracker("ami", "main", clock=lambda: AT)
    messages: list[dict[str, str]] = []
    events: list[CallEvent] = []
    buffer = b""
    for chunk in chunks:
        got, buffer = framer.feed(buffer + chunk)
        messages.extend(got)
        for msg in got:
            events.extend(tracker.handle(msg))
    return messages, shape(events), buffer


@FUZZ
@given(streams(AMI), st.lists(st.integers(0, 10_000), max_size=8))
def test_ami_chunks_equal_whole(data: bytes, cuts: list[int]) -> None:
    data = b"Asterisk Call Manager/6.0.0\r\n" + data
    whole = ami_run([data])
    assert ami_run(chunked(data, cuts)) == whole


@FUZZ
@given(st.lists(st.dictionaries(st.sampled_from(AMI_KEYS := [
    "event", "linkedid", "uniqueid", "channel", "destchannel", "calleridnum", "calleridname",
    "connectedlinenum", "destcalleridnum", "dialstatus", "context", "exten", "cause",
    "actionid", "response", "interface", "membername", "destlinkedid", "destuniqueid",
    "bridgeuniqueid", "channelstate",
]), st.one_of(st.sampled_from([
    "Newchannel", "DialBegin", "DialEnd", "AgentCalled", "AgentConnect", "BridgeEnter",
    "BridgeLeave", "BridgeDestroy", "Hangup", "OriginateResponse", "ANSWER", "1", "PJSIP/201",
    "PJSIP/201-0000002a", "Local/201@from-queue-00000001;1", "<unknown>", "0312345678",
    "from-pstn", "Success", "Failure", "", "²", "١٢",
]), st.text(max_size=20))), max_size=30))  # fmt: skip
def test_ami_tracker_never_raises_on_any_message(messages: list[dict[str, str]]) -> None:
    tracker = AmiCallTracker("ami", "main", clock=lambda: AT)
    for msg in messages:
        for event in tracker.handle(msg):
            assert event.call_id


# -- modem -----------------------------------------------------------------------------------


def modem_run(chunks: list[bytes]) -> list[dict[str, Any]]:
    parser = ModemParser("modem", "main", clock=lambda: AT, monotonic=lambda: 0.0,
                         id_factory=counter("modem"))  # fmt: skip
    events: list[CallEvent] = []
    buffer = b""
    for chunk in chunks:
        res = parser.feed(buffer + chunk)
        buffer = res.leftover
        events.extend(res.events)
    events.extend(parser.feed(buffer + b"\r\n").events)
    events.extend(parser.flush())
    events.extend(parser.check_timeout(now=1e9))
    return shape(events)


@FUZZ
@given(streams(MODEM), st.lists(st.integers(0, 10_000), max_size=8))
def test_modem_chunks_equal_whole(data: bytes, cuts: list[int]) -> None:
    assert modem_run(chunked(data, cuts)) == modem_run([data])


# -- Number Display --------------------------------------------------------------------------


def nd_run(chunks: list[bytes]) -> tuple[list[dict[str, Any]], bytes]:
    parser = NdParser("nd", "main", clock=lambda: AT, monotonic=lambda: 0.0,
                      id_factory=counter("nd"))  # fmt: skip
    events: list[CallEvent] = []
    replies = b""
    buffer = b""
    for chunk in chunks:
        res = parser.feed(buffer + chunk)
        buffer = res.leftover
        events.extend(res.events)
        replies += res.reply
        assert len(buffer) <= 65  # an unfinished frame never grows without bound
    return shape(events), replies


@FUZZ
@given(streams(ND), st.lists(st.integers(0, 10_000), max_size=8))
@example(
    b"\x020321 3 1405 \xc2\xb2\xc2\xb9\x03\x02\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4 3 1405 1\x03", []
)
def test_nd_chunks_equal_whole_frames_only(data: bytes, cuts: list[int]) -> None:
    whole_events, _ = nd_run([data])
    events, _ = nd_run(chunked(data, cuts))
    assert events == whole_events
    for event in whole_events:
        assert event["caller_raw"].isascii()


@FUZZ
@given(st.binary(max_size=80))
def test_nd_frame_parser_never_raises(body: bytes) -> None:
    frame = parse_frame(body)
    if frame is not None:
        assert frame.mmdd.isascii() and frame.hhmm.isascii() and frame.number.isascii()


# -- webhook body ----------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=20,
)  # fmt: skip
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(["ringing", "answered", "ended", "missed", "dialing", "x"]),
        "call_id": st.one_of(st.text(max_size=140), st.integers(), JSON),
        "from": st.one_of(st.text(max_size=70), st.sampled_from(["０３ー１２３４ー５６７８", "²"])),
        "to": st.one_of(st.text(max_size=70), JSON),
        "extension": st.one_of(st.none(), st.text(max_size=40), st.integers(), JSON),
        "line": st.one_of(st.text(max_size=40), JSON),
        "privacy": JSON,
        "caller_name": st.one_of(st.text(max_size=70), JSON),
        "answered": JSON,
        "reason": st.one_of(st.text(max_size=70), JSON),
        "at": st.one_of(
            st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
            st.sampled_from(["0001-01-01T00:00:00+09:00", "9999-12-31T23:59:59-09:00", "Z"]),
            st.text(max_size=40),
            JSON,
        ),
    },
)


@FUZZ
@given(st.one_of(FIELDS.map(lambda d: json.dumps(d).encode()), streams(WEBHOOK)))
@example(b"[" * 30000 + b"]" * 30000)
@example(b'{"event": "ringing", "call_id": ' + b"1" * 5000 + b"}")
@example(b'{"event": "answered", "call_id": "x", "at": "0001-01-01T00:00:00+09:00"}')
def test_webhook_body_raises_only_webhook_error(body: bytes) -> None:
    try:
        events = parse_webhook("cloud", "main", body)
    except WebhookError:
        return
    for event in events:
        assert event.source == "cloud" and 0 < len(event.call_id) <= 128
        json.dumps(event.to_dict())


def test_profiles_are_registered() -> None:
    assert settings.get_profile("dev").max_examples < settings.get_profile("fuzz").max_examples


@pytest.mark.parametrize("corpus", [SIP, AMI, MODEM, ND, WEBHOOK])
def test_corpus_is_not_empty(corpus: list[bytes]) -> None:
    assert corpus and all(corpus)
