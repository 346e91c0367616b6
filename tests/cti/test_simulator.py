"""The simulator source used by the demo and ``yebisu simulate-call``."""

from __future__ import annotations

import pytest

from cti_bridge.events import CallAnswered, CallEnded, CallRinging, OutboundDialing
from cti_bridge.source import SourceError
from cti_bridge.sources.simulator import SimulatorSource, UnknownCall
from cti_bridge.supervisor import Supervisor

from .conftest import Sink, until


async def test_ring_answer_hangup(sink: Sink) -> None:
    sim = SimulatorSource()
    with pytest.raises(SourceError, match="not running"):
        await sim.ring("0312345678")
    sup = Supervisor(sim, sink)
    sup.start()
    try:
        await until(lambda: sim.running)
        call_id = await sim.ring("０３－１２３４－５６７８", extension="201", line="osaka")
        ringing = await sink.next()
        assert isinstance(ringing, CallRinging)
        assert (ringing.call_id, ringing.source, ringing.line, ringing.extension) == (
            call_id,
            "simulator",
            "osaka",
            "201",
        )
        assert ringing.number == "+81312345678"
        await sim.answer(call_id, "201")
        answered = await sink.next()
        assert isinstance(answered, CallAnswered) and answered.line == "osaka"
        await sim.hangup(call_id)
        ended = await sink.next()
        assert isinstance(ended, CallEnded) and ended.answered and ended.reason == "hangup"
        with pytest.raises(UnknownCall):
            await sim.hangup(call_id)

        missed = await sim.ring("P")
        first = await sink.next()
        assert isinstance(first, CallRinging) and first.withheld == "private"
        assert first.extension is None and first.line == "main"
        await sim.hangup(missed)
        end = await sink.next()
        assert isinstance(end, CallEnded) and not end.answered and end.reason == "missed"

        out = await sim.dial("201", "0312345678")
        dialing = await sink.next()
        assert isinstance(dialing, OutboundDialing) and dialing.call_id == out
    finally:
        await sup.stop()
    assert not sim.running
