"""Runs one source forever: reconnects with exponential back-off and reports its state."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from cti_bridge.events import CallEvent, utcnow
from cti_bridge.source import Emit, Source

__all__ = ["SourceState", "SourceStatus", "Supervisor"]

log = logging.getLogger(__name__)


class SourceState(StrEnum):
    """Where a supervised source stands."""

    IDLE = "idle"
    CONNECTING = "connecting"
    UP = "up"
    DOWN = "down"  # lost or failed; waiting to retry
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A snapshot for a status page."""

    name: str
    kind: str
    line: str
    state: SourceState
    since: datetime
    last_error: str = ""
    connects: int = 0
    failures: int = 0
    events: int = 0
    last_event_at: datetime | None = None
    retry_in_s: float | None = None


class Supervisor:
    """Keep ``source.run(emit)`` running; back-off between ``min_s`` and ``max_s`` seconds.

    The delay doubles after each failure (with up to 20 % jitter) and goes back to ``min_s``
    once the source reported itself up. Exceptions raised by ``emit`` are logged, not fatal:
    a failing consumer must not drop the serial port or socket.
    """

    def __init__(
        self,
        source: Source,
        emit: Emit,
        *,
        min_s: float | None = None,
        max_s: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.source = source
        self._emit = emit
        self.min_s = min_s if min_s is not None else source.config.reconnect_min_s
        self.max_s = max(self.min_s, max_s if max_s is not None else source.config.reconnect_max_s)
        self._sleep = sleep
        self._status = SourceStatus(
            source.name, source.kind, source.line, SourceState.IDLE, utcnow()
        )
        self._task: asyncio.Task[None] | None = None
        self._state_changed = asyncio.Event()
        self._seen = 0  # connects count at the last logged change

    @property
    def status(self) -> SourceStatus:
        """Current state, counters and last error."""
        return self._status

    @property
    def state(self) -> SourceState:
        """Shortcut for ``status.state``."""
        return self._status.state

    def _set(self, state: SourceState, **changes: object) -> None:
        old = self._status.state
        old_error = self._status.last_error
        if state != old:
            changes["since"] = utcnow()
        self._status = replace(self._status, state=state, **changes)  # type: ignore[arg-type]
        if state != old:
            # Retries failing the same way again are logged at DEBUG only, not every few seconds.
            repeat = old_error == self._status.last_error and self._status.connects == self._seen
            if state is SourceState.DOWN:
                level = logging.DEBUG if repeat and self._status.failures > 1 else logging.WARNING
            elif state is SourceState.CONNECTING:
                level = logging.DEBUG if self._status.failures else logging.INFO
            else:
                level = logging.INFO
            self._seen = self._status.connects
            log.log(
                level,
                "source %s (%s): %s -> %s%s",
                self.source.name,
                self.source.kind,
                old.value,
                state.value,
                f" ({self._status.last_error})" if state is SourceState.DOWN else "",
            )
            self._state_changed.set()

    async def wait_state(self, state: SourceState) -> None:
        """Wait until the source is in ``state`` (handy for tests and start-up)."""
        while self._status.state != state:
            self._state_changed.clear()
            await self._state_changed.wait()

    async def _guarded_emit(self, event: CallEvent) -> None:
        self._status = replace(self._status, events=self._status.events + 1, last_event_at=utcnow())
        try:
            await self._emit(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("source %s: event consumer failed on %s", self.source.name, event)

    def _on_up(self) -> None:
        self._set(
            SourceState.UP, connects=self._status.connects + 1, last_error="", retry_in_s=None
        )

    async def run(self) -> None:
        """Run until cancelled."""
        delay = self.min_s
        self.source.set_up_listener(self._on_up)
        try:
            while True:
                self._set(SourceState.CONNECTING, retry_in_s=None)
                error = ""
                try:
                    await self.source.run(self._guarded_emit)
                    error = "source stopped"
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                if self._status.state is SourceState.UP:
                    delay = self.min_s  # it worked for a while: start over
                wait = delay * (0.8 + 0.2 * random.random())
                self._set(
                    SourceState.DOWN,
                    last_error=error,
                    failures=self._status.failures + 1,
                    retry_in_s=round(wait, 3),
                )
                await self._sleep(wait)
                delay = min(delay * 2, self.max_s)
        finally:
            self.source.set_up_listener(None)
            self._set(SourceState.STOPPED, retry_in_s=None)

    def start(self) -> asyncio.Task[None]:
        """Start :meth:`run` as a task (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"cti-source-{self.source.name}")
        return self._task

    async def stop(self) -> None:
        """Cancel the task and wait for the source to close."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
