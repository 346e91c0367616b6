"""Runs one source forever: reconnects with exponential back-off and reports its state."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from cti_bridge.events import CallEvent, utcnow
from cti_bridge.source import Emit, Source

__all__ = ["SourceState", "SourceStatus", "Supervisor"]

log = logging.getLogger(__name__)

JST = timezone(timedelta(hours=9), "JST")


def _jst_day(at: datetime) -> date:
    return at.astimezone(JST).date()


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
    last_error_at: datetime | None = None
    connects: int = 0
    failures: int = 0
    events: int = 0
    events_today: int = 0  # since midnight JST (the call centre's day)
    last_event_at: datetime | None = None
    retry_in_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (ISO 8601 times), for bridge processes publishing their state."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceStatus:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on a malformed dict."""
        kwargs: dict[str, Any] = {}
        try:
            for f in fields(cls):
                if f.name not in data:
                    continue
                value = data[f.name]
                if f.name in ("since", "last_error_at", "last_event_at") and value is not None:
                    value = datetime.fromisoformat(str(value))
                kwargs[f.name] = value
            kwargs["state"] = SourceState(kwargs.get("state", ""))
            return cls(**kwargs)
        except (TypeError, KeyError) as exc:
            raise ValueError(f"bad source status: {exc}") from None


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
        summary_every_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
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
        self.summary_every_s = summary_every_s
        self._monotonic = monotonic
        self._down_attempts = 0  # failed attempts since the source was last up
        self._down_error = ""
        self._summary_at = 0.0
        self._day = _jst_day(utcnow())

    @property
    def status(self) -> SourceStatus:
        """Current state, counters and last error."""
        if self._status.events_today and _jst_day(utcnow()) != self._day:
            self._status = replace(self._status, events_today=0)
        return self._status

    @property
    def state(self) -> SourceState:
        """Shortcut for ``status.state``."""
        return self._status.state

    def _set(self, state: SourceState, **changes: object) -> None:
        old = self._status.state
        if state != old:
            changes["since"] = utcnow()
        self._status = replace(self._status, state=state, **changes)  # type: ignore[arg-type]
        if state != old:
            if state is SourceState.DOWN:
                self._log_down(old)
            elif state is SourceState.UP:
                if self._down_attempts:
                    log.info(
                        "source %s (%s): %s -> up again after %d failed attempt(s)",
                        self.source.name,
                        self.source.kind,
                        old.value,
                        self._down_attempts,
                    )
                else:
                    log.info(
                        "source %s (%s): %s -> up", self.source.name, self.source.kind, old.value
                    )
                self._down_attempts = 0
            else:
                level = logging.INFO
                if state is SourceState.CONNECTING and self._down_attempts:
                    level = logging.DEBUG  # retrying: the down report says it all
                log.log(
                    level,
                    "source %s (%s): %s -> %s",
                    self.source.name,
                    self.source.kind,
                    old.value,
                    state.value,
                )
            self._state_changed.set()

    def _log_down(self, old: SourceState) -> None:
        """The first failure is a WARNING; while the source stays down, a summary every
        ``summary_every_s`` seconds (and a new kind of error at once), DEBUG in between."""
        self._down_attempts += 1
        error = self._status.last_error
        now = self._monotonic()
        name, kind = self.source.name, self.source.kind
        if self._down_attempts == 1 or error != self._down_error:
            log.warning("source %s (%s): %s -> down (%s)", name, kind, old.value, error)
            self._down_error, self._summary_at = error, now
        elif now - self._summary_at >= self.summary_every_s:
            log.warning(
                "source %s (%s): still down after %d attempts: %s",
                name,
                kind,
                self._down_attempts,
                error,
            )
            self._summary_at = now
        else:
            log.debug(
                "source %s (%s): attempt %d failed: %s", name, kind, self._down_attempts, error
            )

    async def wait_state(self, state: SourceState) -> None:
        """Wait until the source is in ``state`` (handy for tests and start-up)."""
        while self._status.state != state:
            self._state_changed.clear()
            await self._state_changed.wait()

    async def _guarded_emit(self, event: CallEvent) -> None:
        now = utcnow()
        day = _jst_day(now)
        today = self._status.events_today + 1 if day == self._day else 1
        self._day = day
        self._status = replace(
            self._status, events=self._status.events + 1, events_today=today, last_event_at=now
        )
        try:
            await self._emit(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("source %s: event consumer failed on %s", self.source.name, event)

    def _on_up(self) -> None:
        # The last error (and its time) stays on show: 管理 tells what happened last.
        self._set(SourceState.UP, connects=self._status.connects + 1, retry_in_s=None)

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
                    last_error_at=utcnow(),
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
