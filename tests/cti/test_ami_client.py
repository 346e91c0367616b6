"""The AMI client against a local TCP server replaying recorded Asterisk transcripts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cti_bridge.config import AmiSourceConfig
from cti_bridge.events import CallAnswered, CallEnded, CallRinging, OutboundDialing
from cti_bridge.source import DialError
from cti_bridge.sources.ami import AmiSource
from cti_bridge.supervisor import SourceState, Supervisor

from .conftest import Sink, shape, until
from .fake_ami import FakeAsterisk, events_of


@pytest.fixture
async def asterisk() -> AsyncIterator[FakeAsterisk]:
    server = FakeAsterisk()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_supervisor(server: FakeAsterisk, sink: Sink, secret: str = "s3cret") -> Supervisor:
    cfg = AmiSourceConfig(
        name="ami",
        line="main",
        host="127.0.0.1",
        port=server.port,
        username="yebisu",
        secret=secret,
        originate_context="from-internal",
        originate_channel="PJSIP/{extension}",
        reconnect_min_s=0.02,
        reconnect_max_s=0.1,
    )
    return Supervisor(AmiSource(cfg), sink)


async def test_ringing_answer_hangup_and_reconnect(asterisk: FakeAsterisk, sink: Sink) -> None:
    asterisk.scripts = [events_of("ami_dial_answer.txt"), events_of("ami_queue.txt")]
    sup = make_supervisor(asterisk, sink)
    sup.start()
    try:
        ringing, answered, ended = [await sink.next() for _ in range(3)]
        assert isinstance(ringing, CallRinging)
        assert (ringing.extension, ringing.number, ringing.call_id) == (
            "201",
            "+81312345678",
            "1700000100.11",
        )
        assert isinstance(answered, CallAnswered) and answered.extension == "201"
        assert isinstance(ended, CallEnded) and ended.answered
        login = asterisk.actions[0]
        assert (login["action"], login["username"], login["secret"]) == (
            "Login",
            "yebisu",
            "s3cret",
        )
        assert login["events"] == "call,agent"

        await asterisk.drop()  # Asterisk restarts
        await until(lambda: asterisk.logins == 2, what="second login")
        # The queue call after the reconnect: AgentCalled ×2, answered by 202.
        events = [await sink.next() for _ in range(4)]
        assert [(e.type, getattr(e, "extension", None)) for e in events] == [
            ("ringing", "201"),
            ("ringing", "202"),
            ("answered", "202"),
            ("ended", None),
        ]
        assert sup.status.connects == 2 and sup.status.failures == 1
    finally:
        await sup.stop()


async def test_login_refused_is_retried_with_back_off(asterisk: FakeAsterisk, sink: Sink) -> None:
    sup = make_supervisor(asterisk, sink, secret="wrong")
    sup.start()
    try:
        await until(lambda: sup.status.failures >= 2, what="two refused logins")
        assert "login refused" in sup.status.last_error
        assert sup.status.connects == 0
        assert sup.state is not SourceState.UP
    finally:
        await sup.stop()


async def test_originate_click_to_dial(asterisk: FakeAsterisk, sink: Sink) -> None:
    sup = make_supervisor(asterisk, sink)
    sup.start()
    try:
        await until(lambda: sup.state is SourceState.UP)
        call_id = await sup.source.dial("201", "+81312345678")
        originate = next(a for a in asterisk.actions if a.get("action") == "Originate")
        assert originate["channel"] == "PJSIP/201"
        assert originate["exten"] == "0312345678"
        assert originate["context"] == "from-internal"
        assert originate["priority"] == "1"
        assert originate["async"] == "true"
        assert originate["timeout"] == "30000"
        assert originate["callerid"] == '"0312345678" <0312345678>'
        assert originate["actionid"] == originate["channelid"] == call_id
        events = [await sink.next() for _ in range(3)]
        assert isinstance(events[0], OutboundDialing)
        assert [shape(e) for e in events] == [
            {
                "type": "dialing",
                "source": "ami",
                "line": "main",
                "extension": "201",
                "number": "+81312345678",
            },
            {"type": "answered", "source": "ami", "line": "main", "extension": "201"},
            {
                "type": "ended",
                "source": "ami",
                "line": "main",
                "answered": True,
                "reason": "hangup",
            },
        ]
        assert {e.call_id for e in events} == {call_id}
    finally:
        await sup.stop()


async def test_originate_refused_and_bad_input(asterisk: FakeAsterisk, sink: Sink) -> None:
    asterisk.originate_error = "Extension does not exist."
    sup = make_supervisor(asterisk, sink)
    with pytest.raises(DialError, match="not connected"):
        await sup.source.dial("201", "0312345678")
    sup.start()
    try:
        await until(lambda: sup.state is SourceState.UP)
        with pytest.raises(DialError, match="Extension does not exist"):
            await sup.source.dial("201", "0312345678")
        with pytest.raises(DialError, match="bad extension"):
            await sup.source.dial("201\r\nAction: Logoff", "0312345678")
        with pytest.raises(DialError, match="nothing to dial"):
            await sup.source.dial("201", "")
        assert sink.events == []
    finally:
        await sup.stop()
