"""Supervisor: back-off, state changes, consumer failures, clean cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cti_bridge.config import SimulatorSourceConfig
from cti_bridge.events import CallAnswered, CallEvent
from cti_bridge.source import Emit, Source
from cti_bridge.supervisor import SourceState, Supervisor

from .conftest import Sink, until


class Flaky(Source):
    """Fails ``failures`` times, then comes up and emits one event per run."""

    kind = "flaky"

    def __init__(self, failures: int) -> None:
        super().__init__(SimulatorSourceConfig(name="flaky", line="l"))
        self.failures = failures
        self.runs = 0
        self.release = asyncio.Event()
        self.closed = 0

    async def run(self, emit: Emit) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise ConnectionError(f"attempt {self.runs} failed")
        self.mark_up()
        try:
            await emit(CallAnswered(source=self.name, call_id=str(self.runs), line=self.line))
            await self.release.wait()
            self.release.clear()
            raise ConnectionError("link lost")
        finally:
            self.closed += 1


async def test_exponential_back_off_and_reset_after_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "cti_bridge.supervisor")
    waits: list[float] = []

    async def fake_sleep(s: float) -> None:
        waits.append(s)
        await asyncio.sleep(0)

    source = Flaky(failures=5)
    sink = Sink()
    sup = Supervisor(source, sink, min_s=1.0, max_s=8.0, sleep=fake_sleep)
    sup.start()
    await until(lambda: sup.state is SourceState.UP)
    # 1, 2, 4, 8, 8 seconds (each with up to 20 % jitter below).
    for got, nominal in zip(waits, [1, 2, 4, 8, 8], strict=True):
        assert nominal * 0.8 <= got <= nominal
    assert sup.status.failures == 5 and sup.status.connects == 1
    event = await sink.next()
    assert event.call_id == "6"
    assert sup.status.events == 1 and sup.status.last_event_at is not None

    source.release.set()  # the link drops after being up: back to the minimum delay
    await until(lambda: sup.status.connects == 2)
    assert 0.8 <= waits[5] <= 1.0
    assert "link lost" in caplog.text
    assert "flaky (flaky): up -> down (ConnectionError: link lost)" in caplog.text

    await sup.stop()
    assert sup.state is SourceState.STOPPED
    assert source.closed == 2
    await sup.stop()  # idempotent


async def test_consumer_errors_do_not_drop_the_source(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[CallEvent] = []

    async def broken(event: CallEvent) -> None:
        calls.append(event)
        raise RuntimeError("database down")

    source = Flaky(failures=0)
    sup = Supervisor(source, broken, min_s=0.01, max_s=0.01)
    sup.start()
    await until(lambda: len(calls) == 1)
    assert sup.state is SourceState.UP
    assert "event consumer failed" in caplog.text
    await sup.stop()


async def test_cancel_while_waiting_to_retry() -> None:
    source = Flaky(failures=100)
    sup = Supervisor(source, Sink(), min_s=60, max_s=60)
    sup.start()
    await until(lambda: sup.state is SourceState.DOWN)
    assert sup.status.retry_in_s is not None and sup.status.retry_in_s >= 48
    await sup.stop()
    assert sup.state is SourceState.STOPPED


async def test_wait_state() -> None:
    sup = Supervisor(Flaky(failures=0), Sink(), min_s=0.01, max_s=0.01)
    sup.start()
    await asyncio.wait_for(sup.wait_state(SourceState.UP), 5)
    await sup.stop()
