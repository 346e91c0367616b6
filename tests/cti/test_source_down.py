"""A source that stays down is reported, not silent: the ND adapter on a 7E1 port whose
reopening fails with ``termios.error`` (a real pty by socat; the failing ``tcsetattr`` is
injected, as a USB adapter refusing 7E1 after a restart does), the supervisor's log policy,
and the states a ``yebisu bridge`` process publishes to Redis for 管理."""

from __future__ import annotations

import asyncio
import json
import logging
import termios
from collections.abc import Callable
from typing import Any

import pytest

from cti_bridge.config import NdSourceConfig, SimulatorSourceConfig
from cti_bridge.events import CallRinging
from cti_bridge.serialio import SerialLink
from cti_bridge.source import Emit, Source
from cti_bridge.sources.nd import ACK, NdSource
from cti_bridge.supervisor import SourceState, SourceStatus, Supervisor

from .conftest import PtyPair, Sink, until


class FailingTermios:
    """Stands in for ``termios.tcsetattr`` while ``failing`` is set."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.failing = True
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        if self.failing:
            self.calls += 1
            raise termios.error(5, "Input/output error")
        return self.real(*args)


def supervisor_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "cti_bridge.supervisor"]


async def test_serial_link_turns_termios_error_into_connection_error(
    pty_pair: PtyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FailingTermios(termios.tcsetattr)
    monkeypatch.setattr(termios, "tcsetattr", fake)
    link = SerialLink(str(pty_pair.dev), baudrate=9600, bytesize=7, parity="E", stopbits=1)
    with pytest.raises(ConnectionError, match=r"Input/output error \(errno 5\)"):
        await link.open()
    assert fake.calls >= 1
    fake.failing = False
    await link.open()  # the port itself is fine: it opens once the device answers
    link.close()


@pytest.mark.serial
async def test_nd_on_7e1_down_is_warned_summarised_then_back_up(
    pty_pair: PtyPair,
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "cti_bridge")
    fake = FailingTermios(termios.tcsetattr)
    monkeypatch.setattr(termios, "tcsetattr", fake)
    cfg = NdSourceConfig(
        name="nd",
        line="tokyo",
        port=str(pty_pair.dev),
        bytesize=7,
        parity="E",
        stopbits=1,
        reconnect_min_s=0.01,
        reconnect_max_s=0.02,
    )
    sup = Supervisor(NdSource(cfg), sink, summary_every_s=0.3)
    sup.start()
    try:
        await until(lambda: sup.status.failures >= 20, what="many failed attempts")
        await asyncio.sleep(0.35)  # past one summary period
        await until(lambda: sup.status.failures >= 25)
        status = sup.status
        assert status.state in (SourceState.DOWN, SourceState.CONNECTING)
        assert "cannot open" in status.last_error and "Input/output error" in status.last_error
        assert status.last_error_at is not None
        records = supervisor_records(caplog)
        warnings = [r for r in records if r.levelno == logging.WARNING]
        assert "nd (nd): connecting -> down (ConnectionError: cannot open" in (
            warnings[0].getMessage()
        )
        summaries = [r for r in warnings if "still down after" in r.getMessage()]
        assert summaries and len(warnings) == 1 + len(summaries) <= 4
        assert "Input/output error" in summaries[0].getMessage()
        assert all(r.exc_info is None for r in records)
        assert sum(r.levelno == logging.DEBUG for r in records) >= 20  # the retries, quietly

        fake.failing = False  # the adapter answers again
        await until(lambda: sup.state is SourceState.UP, what="back up")
        back = [r for r in supervisor_records(caplog) if "up again after" in r.getMessage()]
        assert len(back) == 1 and back[0].levelno == logging.INFO
        # The error that kept it down stays on show (管理), with its time.
        assert "Input/output error" in sup.status.last_error
        adapter = SerialLink(str(pty_pair.peer), baudrate=9600, bytesize=7, parity="E")
        await adapter.open()
        try:
            adapter.write(b"\x020321 3 1405 0312345678\x03")
            ringing = await sink.next()
            assert isinstance(ringing, CallRinging) and ringing.number == "+81312345678"
            async with asyncio.timeout(5):
                while not (reply := await adapter.read()):
                    pass
            assert reply == ACK
        finally:
            adapter.close()
        assert sup.status.events_today == 1
    finally:
        await sup.stop()


class Down(Source):
    kind = "down"

    def __init__(self) -> None:
        super().__init__(SimulatorSourceConfig(name="pbx", line="main"))
        self.error = "first"

    async def run(self, emit: Emit) -> None:
        raise ConnectionError(self.error)


async def test_a_new_kind_of_error_is_warned_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "cti_bridge.supervisor")
    source = Down()
    sup = Supervisor(source, Sink(), min_s=0.005, max_s=0.01, summary_every_s=3600)
    sup.start()
    try:
        await until(lambda: sup.status.failures >= 5)
        source.error = "second"
        await until(lambda: "second" in sup.status.last_error)
        await until(lambda: sup.status.failures >= 10)
    finally:
        await sup.stop()
    warnings = [r.getMessage() for r in supervisor_records(caplog) if r.levelno >= logging.WARNING]
    assert len(warnings) == 2
    assert "(ConnectionError: first)" in warnings[0] and "(ConnectionError: second)" in warnings[1]


def test_status_round_trips_through_json() -> None:
    sup = Supervisor(Down(), Sink())
    status = sup.status
    again = SourceStatus.from_dict(json.loads(json.dumps(status.to_dict())))
    assert again == status
    with pytest.raises(ValueError):
        SourceStatus.from_dict({"name": "x"})
