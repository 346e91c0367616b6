"""SIP message parsing and the UAS state machine, on recorded datagrams."""

from __future__ import annotations

import logging

import pytest

from cti_bridge.events import ANSWERED_ELSEWHERE, CallEnded, CallRinging
from cti_bridge.sources.sip import SipEndpoint, caller_of, parse_message, parse_name_addr

from .conftest import transcript

PEER = ("192.0.2.1", 5060)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def endpoint(final_after_s: float = 5.0, clock: Clock | None = None) -> SipEndpoint:
    return SipEndpoint("sip", "main", final_after_s=final_after_s, monotonic=clock or Clock())


def status_lines(responses: list[bytes]) -> list[str]:
    return [r.split(b"\r\n", 1)[0].decode() for r in responses]


def header(response: bytes, name: str) -> str:
    for line in response.decode().split("\r\n"):
        key, _, value = line.partition(": ")
        if key.lower() == name.lower():
            return value
    raise AssertionError(f"no {name} in {response!r}")


def ack_for(invite: bytes, to_with_tag: str) -> bytes:
    msg = parse_message(invite)
    lines = [
        f"ACK {msg.uri} SIP/2.0",
        f"Via: {msg.values('via')[0]}",
        f"From: {msg.header('from')}",
        f"To: {to_with_tag}",
        f"Call-ID: {msg.call_id}",
        f"CSeq: {msg.cseq[0]} ACK",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_parse_full_and_compact_forms() -> None:
    full = parse_message(transcript("sip_invite_pai.txt"))
    assert (full.method, full.uri) == ("INVITE", "sip:201@192.0.2.10:5060")
    assert full.cseq == (102, "INVITE")
    assert full.body.startswith(b"v=0")
    compact = parse_message(transcript("sip_invite_compact.txt"))
    assert compact.call_id == "compact-0001@192.0.2.1"
    assert compact.header("to") == '"Reception" <sip:202@192.0.2.10>'  # folded line
    assert compact.header("from") == "<sip:0952326611@192.0.2.1>;tag=77"
    assert compact.values("via") == ["SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-3745-4-0"]


def test_name_addr() -> None:
    na = parse_name_addr('"SUZUKI" <sip:+81312345678@ngn.example.jp;user=phone>;tag=x')
    assert (na.display, na.user, na.host, na.params) == (
        "SUZUKI",
        "+81312345678",
        "ngn.example.jp",
        {"tag": "x"},
    )
    assert parse_name_addr("<tel:+81-3-1234-5678;phone-context=x>").user == "+81-3-1234-5678"
    assert parse_name_addr("sip:%2B81312345678@h;tag=1").user == "+81312345678"
    assert parse_name_addr("Anonymous <sip:anonymous@anonymous.invalid>").host == (
        "anonymous.invalid"
    )


@pytest.mark.parametrize(
    ("name", "ext", "raw", "number", "withheld", "caller_name"),
    [
        ("sip_invite_pai.txt", "201", "+81312345678", "+81312345678", "", "SUZUKI"),
        ("sip_invite_privacy.txt", "201", "anonymous", "", "private", ""),
        ("sip_invite_payphone.txt", "201", "anonymous", "", "payphone", ""),
        ("sip_invite_compact.txt", "202", "0952326611", "+81952326611", "", "Sato Hanako"),
    ],
)
def test_invite_gives_one_ringing_and_100_180(
    name: str, ext: str, raw: str, number: str, withheld: str, caller_name: str
) -> None:
    ep = endpoint()
    data = transcript(name)
    res = ep.handle(data, PEER)
    [event] = res.events
    assert isinstance(event, CallRinging)
    assert event.call_id == parse_message(data).call_id
    assert (event.extension, event.caller_raw, event.number, event.withheld) == (
        ext,
        raw,
        number,
        withheld,
    )
    assert event.caller_name == caller_name
    assert status_lines(res.responses) == ["SIP/2.0 100 Trying", "SIP/2.0 180 Ringing"]
    assert ";tag=" not in header(res.responses[0], "To")
    assert ";tag=" in header(res.responses[1], "To")
    assert header(res.responses[1], "Call-ID") == event.call_id
    assert res.schedule_final == event.call_id


def test_privacy_hides_asserted_number_everywhere() -> None:
    res = endpoint().handle(transcript("sip_invite_privacy.txt"), PEER)
    assert "312345678" not in repr(res.events)


@pytest.mark.parametrize(
    ("extra", "withheld"),
    [
        ("Privacy: id", "private"),
        ("Privacy: user;id", "private"),
        ("Privacy: none", ""),
        ("Remote-Party-ID: <sip:0312345678@h>;party=calling;privacy=full", "private"),
    ],
)
def test_privacy_variants(extra: str, withheld: str) -> None:
    invite = (
        "INVITE sip:201@h SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
        "From: <sip:0312345678@h>;tag=1\r\nTo: <sip:201@h>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
        f"P-Asserted-Identity: <sip:0312345678@h>\r\n{extra}\r\nContent-Length: 0\r\n\r\n"
    )
    caller = caller_of(parse_message(invite.encode()))
    assert caller.withheld == withheld
    assert (caller.raw == "0312345678") == (withheld == "")


def test_retransmitted_invite_gets_last_response_and_no_second_event() -> None:
    ep = endpoint()
    data = transcript("sip_invite_pai.txt")
    first = ep.handle(data, PEER)
    again = ep.handle(data, PEER)
    assert again.events == []
    assert again.responses == [first.responses[1]]
    assert again.schedule_final == ""


def test_final_after_delay_then_retransmitted_until_ack() -> None:
    clock = Clock()
    ep = endpoint(clock=clock)
    data = transcript("sip_invite_pai.txt")
    call_id = ep.handle(data, PEER).events[0].call_id
    final = ep.final(call_id)
    assert final is not None
    assert status_lines([final]) == ["SIP/2.0 486 Busy Here"]
    assert ep.final(call_id) is None  # only once
    assert ep.retransmit(call_id) == final
    assert ep.handle(data, PEER).responses == [final]  # INVITE resent: final again
    ack = ep.handle(ack_for(data, header(final, "To")), PEER)
    assert ack.responses == [] and ack.events == []
    assert ep.retransmit(call_id) is None
    clock.now = 33
    ep.purge()
    assert call_id not in ep.calls


def test_immediate_final_when_delay_is_zero() -> None:
    ep = endpoint(final_after_s=0)
    res = ep.handle(transcript("sip_invite_pai.txt"), PEER)
    assert status_lines(res.responses) == [
        "SIP/2.0 100 Trying",
        "SIP/2.0 180 Ringing",
        "SIP/2.0 486 Busy Here",
    ]
    assert res.finals == [res.events[0].call_id]


def test_configurable_final_code() -> None:
    ep = SipEndpoint("sip", "main", final_response=480, final_after_s=0)
    res = ep.handle(transcript("sip_invite_pai.txt"), PEER)
    assert status_lines(res.responses)[-1] == "SIP/2.0 480 Temporarily Unavailable"


def test_cancel_gives_200_then_487_and_ends_the_call() -> None:
    ep = endpoint()
    invite = ep.handle(transcript("sip_invite_pai.txt"), PEER)
    res = ep.handle(transcript("sip_cancel.txt"), PEER)
    assert status_lines(res.responses) == ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    assert header(res.responses[0], "CSeq") == "102 CANCEL"
    assert header(res.responses[1], "CSeq") == "102 INVITE"
    assert header(res.responses[1], "To") == header(invite.responses[1], "To")
    [ended] = res.events
    assert isinstance(ended, CallEnded)
    assert (ended.answered, ended.reason) == (False, "cancelled")
    # CANCEL retransmitted: the same 200, nothing else.
    again = ep.handle(transcript("sip_cancel.txt"), PEER)
    assert again.responses == [res.responses[0]] and again.events == []
    # The final was already sent, so a late timer does nothing.
    assert ep.final(ended.call_id) is None


def test_cancel_completed_elsewhere_ends_the_call_as_answered_elsewhere() -> None:
    ep = endpoint()
    ep.handle(transcript("sip_invite_pai.txt"), PEER)
    res = ep.handle(transcript("sip_cancel_elsewhere.txt"), PEER)
    assert status_lines(res.responses) == ["SIP/2.0 200 OK", "SIP/2.0 487 Request Terminated"]
    [ended] = res.events
    assert isinstance(ended, CallEnded)
    assert (ended.answered, ended.reason) == (True, ANSWERED_ELSEWHERE)
    assert ep.handle(transcript("sip_cancel_elsewhere.txt"), PEER).events == []


@pytest.mark.parametrize(
    "reason",
    ['SIP;cause=200;text="Call completed elsewhere"', 'SIP;text="call COMPLETED elsewhere"'],
)
def test_cancel_reason_variants_mean_elsewhere(reason: str) -> None:
    ep = endpoint()
    ep.handle(transcript("sip_invite_pai.txt"), PEER)
    cancel = transcript("sip_cancel_elsewhere.txt").replace(
        b'SIP;cause=200;text="Call completed elsewhere"', reason.encode()
    )
    [ended] = ep.handle(cancel, PEER).events
    assert isinstance(ended, CallEnded) and ended.reason == ANSWERED_ELSEWHERE


ANON_PAI = (
    "INVITE sip:201@192.0.2.10 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-anon\r\n"
    'From: "Anonymous" <sip:anonymous@anonymous.invalid>;tag=a1\r\n'
    "To: <sip:0501234567@192.0.2.10>\r\n"
    "Call-ID: anon-pai-1@192.0.2.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "{extra}"
    "Content-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize(
    ("extra", "raw", "number", "withheld"),
    [
        # RFC 3325: the asserted identity is the caller unless privacy is asked for.
        ("P-Asserted-Identity: <tel:+81312345678>\r\n", "+81312345678", "+81312345678", ""),
        ("P-Asserted-Identity: <sip:0312345678@ngn.example.jp;user=phone>\r\n", "0312345678",
         "+81312345678", ""),
        ("P-Asserted-Identity: <tel:+81312345678>\r\nPrivacy: none\r\n", "+81312345678",
         "+81312345678", ""),
        ("P-Asserted-Identity: <tel:+81312345678>\r\nPrivacy: id\r\n", "anonymous", "",
         "private"),
        ("P-Asserted-Identity: <tel:+81312345678>\r\nPrivacy: id;critical\r\n", "anonymous", "",
         "private"),
        ("P-Asserted-Identity: <sip:anonymous@anonymous.invalid>\r\n", "anonymous", "",
         "private"),
        ("", "anonymous", "", "private"),
    ],
)  # fmt: skip
def test_anonymous_from_with_asserted_identity(
    extra: str, raw: str, number: str, withheld: str
) -> None:
    res = endpoint().handle(ANON_PAI.format(extra=extra).encode(), PEER)
    [event] = res.events
    assert isinstance(event, CallRinging)
    assert (event.caller_raw, event.number, event.withheld) == (raw, number, withheld)
    assert event.caller_name == ""  # "Anonymous" is no name
    if withheld:
        assert "312345678" not in repr(event)


def test_anonymous_from_with_asserted_identity_transcript() -> None:
    [event] = endpoint().handle(transcript("sip_invite_anon_pai.txt"), PEER).events
    assert isinstance(event, CallRinging)
    assert (event.number, event.withheld, event.extension) == ("+81952326611", "", "201")


@pytest.mark.parametrize(
    "packet",
    [
        b"INVITE sip:201@h SIP/2.0\r\nCall-ID: x\r\nCSeq: \xc2\xb2 INVITE\r\n\r\n",
        b"INVITE sip:201@h SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: \xc2\xb9\r\n\r\nv=0",
        b"SIP/2.0 \xc2\xb2\xc2\xb2\xc2\xb2 OK\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
        "INVITE sip:201@h SIP/2.0\r\nCall-ID: x\r\nCSeq: ١ INVITE\r\n\r\n".encode(),
        "ＩＮＶＩＴＥ sip:201@h SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n".encode(),
    ],
)
def test_non_ascii_digits_are_a_clean_refusal(
    packet: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "cti_bridge.sources.sip")
    res = endpoint().handle(packet, PEER)
    assert res.events == [] and res.responses == []
    [record] = caplog.records
    assert "dropped malformed datagram" in record.getMessage() and record.exc_info is None


def test_cancel_unknown_call_is_481() -> None:
    res = endpoint().handle(transcript("sip_cancel.txt"), PEER)
    assert status_lines(res.responses) == ["SIP/2.0 481 Call/Transaction Does Not Exist"]


def test_bye_options_and_other_methods() -> None:
    ep = endpoint()
    data = transcript("sip_invite_pai.txt")
    call_id = ep.handle(data, PEER).events[0].call_id
    bye = data.replace(b"INVITE sip:", b"BYE sip:", 1).replace(b"102 INVITE", b"103 BYE")
    res = ep.handle(bye, PEER)
    assert status_lines(res.responses) == ["SIP/2.0 200 OK"]
    [ended] = res.events
    assert isinstance(ended, CallEnded) and ended.call_id == call_id and ended.answered
    opts = ep.handle(transcript("sip_options.txt"), PEER)
    assert status_lines(opts.responses) == ["SIP/2.0 200 OK"]
    assert header(opts.responses[0], "Allow") == "INVITE, ACK, CANCEL, BYE, OPTIONS"
    reg = transcript("sip_options.txt").replace(b"OPTIONS", b"REGISTER")
    assert status_lines(ep.handle(reg, PEER).responses) == ["SIP/2.0 405 Method Not Allowed"]


def test_via_gets_received_and_rport() -> None:
    res = endpoint().handle(transcript("sip_invite_pai.txt"), ("198.51.100.7", 40000))
    assert header(res.responses[0], "Via") == (
        "SIP/2.0/UDP 192.0.2.1:5060;rport=40000;branch=z9hG4bK-3745-1-0;received=198.51.100.7"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        b"hello world",
        b"SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
        b"INVITE sip:x SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n",
        b"INVITE sip:x SIP/2.0\r\nCall-ID: y\r\n\r\n",
    ],
)
def test_garbage_and_responses_are_ignored(data: bytes) -> None:
    res = endpoint().handle(data, PEER)
    assert res.events == [] and res.responses == []
