"""In-memory source for the demo, ``make run`` and ``yebisu simulate-call``.

The app keeps a reference to the running :class:`SimulatorSource` (``Bridge.simulator()``) and
calls :meth:`~SimulatorSource.ring`, :meth:`~SimulatorSource.answer` and
:meth:`~SimulatorSource.hangup`; events go through the same supervisor and bus as real ones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cti_bridge.config import SimulatorSourceConfig
from cti_bridge.events import CallAnswered, CallEnded, CallEvent, CallRinging, OutboundDialing
from cti_bridge.numbers import normalise_caller
from cti_bridge.source import DialError, Emit, Source, SourceError
from cti_bridge.sources.common import new_call_id

__all__ = ["SimulatorSource", "UnknownCall"]


class UnknownCall(SourceError):
    """No such simulated call (already ended or never rung)."""


@dataclass(slots=True)
class _SimCall:
    line: str
    answered: bool = False


class SimulatorSource(Source):
    """Simulated calls (``kind = "simulator"``)."""

    kind = "simulator"
    can_dial = True

    def __init__(self, config: SimulatorSourceConfig | None = None) -> None:
        super().__init__(config or SimulatorSourceConfig(name="simulator"))
        self._emit: Emit | None = None
        self.calls: dict[str, _SimCall] = {}

    @property
    def running(self) -> bool:
        """True while :meth:`run` is active (events can be produced)."""
        return self._emit is not None

    async def run(self, emit: Emit) -> None:
        """Stay up until cancelled; the methods below produce the events."""
        self._emit = emit
        self.mark_up()
        try:
            await asyncio.Event().wait()
        finally:
            self._emit = None

    async def _send(self, event: CallEvent) -> None:
        if self._emit is None:
            raise SourceError(f"{self.name}: simulator is not running")
        await self._emit(event)

    async def ring(
        self,
        number: str,
        extension: str | None = None,
        line: str | None = None,
        *,
        caller_name: str = "",
    ) -> str:
        """Simulate an incoming call from ``number`` (any form, or P/O/C/anonymous …)."""
        call_id = new_call_id("sim")
        caller = normalise_caller(number)
        call_line = line or self.line
        await self._send(
            CallRinging(
                source=self.name,
                call_id=call_id,
                line=call_line,
                extension=extension or None,
                caller_raw=number,
                number=caller.number_e164,
                withheld=caller.withheld,
                caller_name=caller_name,
            )
        )
        self.calls[call_id] = _SimCall(call_line)
        return call_id

    async def answer(self, call_id: str, extension: str | None = None) -> None:
        """Simulate the PBX reporting that ``extension`` answered ``call_id``."""
        call = self.calls.get(call_id)
        if call is None:
            raise UnknownCall(call_id)
        call.answered = True
        await self._send(
            CallAnswered(source=self.name, call_id=call_id, line=call.line, extension=extension)
        )

    async def hangup(self, call_id: str, *, reason: str = "hangup") -> None:
        """End ``call_id`` (answered or not, as it stands)."""
        call = self.calls.pop(call_id, None)
        if call is None:
            raise UnknownCall(call_id)
        await self._send(
            CallEnded(
                source=self.name,
                call_id=call_id,
                line=call.line,
                answered=call.answered,
                reason=reason if call.answered else "missed",
            )
        )

    async def dial(self, extension: str | None, number: str, *, call_id: str | None = None) -> str:
        """Simulate click-to-dial: emit :class:`OutboundDialing` and remember the call."""
        if not number.strip():
            raise DialError(f"{self.name}: nothing to dial")
        call_id = call_id or new_call_id("sim-out")
        await self._send(
            OutboundDialing(
                source=self.name,
                call_id=call_id,
                line=self.line,
                extension=extension,
                number=number,
            )
        )
        self.calls[call_id] = _SimCall(self.line)
        return call_id
