"""Modem and Number Display sources through a real pty pair (socat), opened by pyserial.

The device vanishes (socat killed: both pty links disappear) and comes back (socat restarted
with the same links); the supervisor reconnects on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cti_bridge.config import ModemSourceConfig, NdSourceConfig
from cti_bridge.events import CallEnded, CallRinging, OutboundDialing
from cti_bridge.serialio import SerialLink
from cti_bridge.sources.modem import ModemSource
from cti_bridge.sources.nd import ACK, NAK, NdSource
from cti_bridge.supervisor import SourceState, Supervisor

from .conftest import PtyPair, Sink, until

pytestmark = pytest.mark.serial


class FakeModem:
    """The device side: answers AT commands with OK, records them, sends what we say."""

    def __init__(self, path: str) -> None:
        self.link = SerialLink(path, baudrate=115200)
        self.commands: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FakeModem:
        await self.link.open()
        self._task = asyncio.create_task(self._serve())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.wait({self._task})
        self.link.close()

    async def _serve(self) -> None:
        buffer = b""
        try:
            while True:
                buffer += await self.link.read()
                *lines, buffer = buffer.split(b"\r")
                for line in lines:
                    text = line.strip().decode()
                    if text.upper().startswith("AT"):
                        self.commands.append(text)
                        self.link.write(text.encode() + b"\r\r\nOK\r\n")
        except ConnectionError:
            pass

    def send(self, data: bytes) -> None:
        self.link.write(data)


@pytest.fixture
async def modem_supervisor(pty_pair: PtyPair, sink: Sink) -> AsyncIterator[Supervisor]:
    cfg = ModemSourceConfig(
        name="modem",
        line="main",
        port=str(pty_pair.dev),
        init=["ATZ", "AT+VCID=1"],
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
        ring_end_s=0.5,
        dial_release_s=0.05,
    )
    source = ModemSource(cfg)
    source.init_timeout_s = 0.5
    sup = Supervisor(source, sink)  # started by the test once the fake modem listens
    try:
        yield sup
    finally:
        await sup.stop()
        assert sup.state is SourceState.STOPPED


CID = b"\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 0312345678\r\n\r\nRING\r\n"


async def test_modem_caller_id_then_unplug_and_replug(
    pty_pair: PtyPair, modem_supervisor: Supervisor, sink: Sink
) -> None:
    sup = modem_supervisor
    async with FakeModem(str(pty_pair.peer)) as modem:
        sup.start()
        await until(lambda: sup.state is SourceState.UP, what="modem up")
        await until(lambda: modem.commands == ["ATZ", "AT+VCID=1"], what="init strings")
        modem.send(CID)
        ringing = await sink.next()
        assert isinstance(ringing, CallRinging)
        assert (ringing.source, ringing.line, ringing.extension) == ("modem", "main", None)
        assert (ringing.number, ringing.caller_raw) == ("+81312345678", "0312345678")
        ended = await sink.next()  # RINGs stop: ring_end_s later
        assert isinstance(ended, CallEnded)
        assert (ended.call_id, ended.answered, ended.reason) == (
            ringing.call_id,
            False,
            "ring_stopped",
        )

    pty_pair.stop()  # the USB modem is pulled out
    await until(lambda: sup.status.failures >= 1, what="supervisor notices the loss")
    assert sup.status.last_error
    await until(lambda: sup.status.failures >= 2, what="a failed reconnect attempt")
    assert sup.state in (SourceState.DOWN, SourceState.CONNECTING)

    pty_pair.start()  # … and plugged in again, same device name
    async with FakeModem(str(pty_pair.peer)) as modem:
        await until(lambda: sup.status.connects == 2, what="reconnected")
        modem.send(b"RING\r\nNMBR = P\r\n\r\nRING\r\n")
        ringing = await sink.next()
        assert isinstance(ringing, CallRinging)
        assert (ringing.number, ringing.withheld) == ("", "private")


async def test_modem_click_to_dial(
    pty_pair: PtyPair, modem_supervisor: Supervisor, sink: Sink
) -> None:
    sup = modem_supervisor
    async with FakeModem(str(pty_pair.peer)) as modem:
        sup.start()
        await until(lambda: sup.state is SourceState.UP and len(modem.commands) == 2)
        call_id = await sup.source.dial("201", "+81312345678")
        dialing = await sink.next()
        assert isinstance(dialing, OutboundDialing)
        assert (dialing.call_id, dialing.extension, dialing.number) == (
            call_id,
            "201",
            "+81312345678",
        )
        await until(lambda: modem.commands[2:] == ["ATD0312345678;", "ATH"], what="ATD…; ATH")


async def test_modem_port_missing_keeps_retrying(tmp_path: object, sink: Sink) -> None:
    cfg = ModemSourceConfig(
        name="m", port="/nonexistent/ttyX", reconnect_min_s=0.01, reconnect_max_s=0.02
    )
    sup = Supervisor(ModemSource(cfg), sink)
    sup.start()
    await until(lambda: sup.status.failures >= 3)
    assert "nonexistent" in sup.status.last_error
    await sup.stop()


@pytest.fixture
async def nd_supervisor(pty_pair: PtyPair, sink: Sink) -> AsyncIterator[Supervisor]:
    cfg = NdSourceConfig(
        name="nd",
        line="tokyo",
        port=str(pty_pair.dev),
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
    )
    sup = Supervisor(NdSource(cfg), sink)
    sup.start()
    try:
        yield sup
    finally:
        await sup.stop()


async def _open_adapter(pair: PtyPair) -> SerialLink:
    link = SerialLink(str(pair.peer), baudrate=9600, bytesize=7, parity="E", stopbits=1)
    await link.open()
    return link


async def _read_reply(link: SerialLink) -> bytes:
    async with asyncio.timeout(5):
        while not (data := await link.read()):
            pass
    return data


async def test_nd_adapter_ack_nak_then_unplug_and_replug(
    pty_pair: PtyPair, nd_supervisor: Supervisor, sink: Sink
) -> None:
    sup = nd_supervisor
    adapter = await _open_adapter(pty_pair)
    try:
        await until(lambda: sup.state is SourceState.UP)
        adapter.write(b"\x020321 3 1405 0312345678\x03")
        ringing = await sink.next()
        assert isinstance(ringing, CallRinging)
        assert (ringing.source, ringing.line, ringing.number) == ("nd", "tokyo", "+81312345678")
        assert await _read_reply(adapter) == ACK
        adapter.write(b"\x02garbage\x03")
        assert await _read_reply(adapter) == NAK
        # A frame with parity bits set as on an 8N1 line, split over two writes.
        frame = bytes(b | (0x80 if bin(b).count("1") % 2 else 0) for b in b"\x020321 3 1406 P\x03")
        adapter.write(frame[:5])
        await asyncio.sleep(0.01)
        adapter.write(frame[5:])
        withheld = await sink.next()
        assert isinstance(withheld, CallRinging) and withheld.withheld == "private"
        assert await _read_reply(adapter) == ACK
    finally:
        adapter.close()

    pty_pair.stop()
    await until(lambda: sup.status.failures >= 1, what="loss noticed")
    pty_pair.start()
    adapter = await _open_adapter(pty_pair)
    try:
        await until(lambda: sup.status.connects == 2, what="reconnected")
        adapter.write(b"\x020321 3 1410 C\x03")
        payphone = await sink.next()
        assert isinstance(payphone, CallRinging) and payphone.withheld == "payphone"
        assert await _read_reply(adapter) == ACK
    finally:
        adapter.close()
