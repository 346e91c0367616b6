"""Hayes modem with caller ID on a serial port.

Parser
------
:class:`ModemParser` understands formatted caller ID (``AT+VCID=1`` / ``AT#CID=1``)::

    RING
    DATE = 0321
    TIME = 1405
    NMBR = 0312345678        (P = private, O = out of area; Japanese modems also C, S, E)
    NAME = SUZUKI
    MESG = 030839...

and the common variants ``NMBR=…`` (no spaces), ``DDN_NMBR= …``, ``CALLER NUMBER: …``,
``CALLER NAME: …`` and GSM-style ``+CLIP: "0312345678",129[,,,"name"[,validity]]``.

* One :class:`~cti_bridge.events.CallRinging` per call, as soon as its caller ID block is
  complete (a ``NAME`` line, a blank line, a ``RING`` or any other line after ``NMBR``; the
  client also flushes a pending block after a short quiet time), or at the second ``RING`` when
  no caller ID came (withheld ``unavailable``). Japanese Number Display sends the caller ID
  *before* the first ring, North American modems between the first two; both work.
* RINGs stopping for ``ring_end_s`` ends the call (``CallEnded(answered=False,
  reason="ring_stopped")``): a modem cannot tell "answered on a handset" from "caller gave up".
  The timer lives in the client, which calls :meth:`ModemParser.check_timeout`.
* Echoed commands and ``OK``/``ERROR``/``NO CARRIER`` are ignored.

Client
------
:class:`ModemSource` opens the port, sends the ``init`` strings one by one (waiting for
``OK``/``ERROR`` up to 2 s each), then reads. :meth:`ModemSource.dial` sends
``ATD<dial_prefix><number>;`` (the semicolon keeps the modem in command mode) and ``ATH``
``dial_release_s`` later, by which time the operator has lifted the handset on the same line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable

from cti_bridge.config import ModemSourceConfig
from cti_bridge.events import CallEnded, CallEvent, CallRinging, OutboundDialing, utcnow
from cti_bridge.numbers import clean_name, dialable, normalise_caller
from cti_bridge.serialio import SerialLink
from cti_bridge.source import DialError, Emit, Source
from cti_bridge.sources.common import Clock, FeedResult, IdFactory, new_call_id, split_lines

__all__ = ["ModemParser", "ModemSource"]

log = logging.getLogger(__name__)

_FIELD = re.compile(
    r"^(?P<key>DATE|TIME|DDN_NMBR|NMBR|NAME|MESG|CALLER\s+NUMBER|CALLER\s+NAME|CALLER\s+ID)"
    r"\s*[=:]\s*(?P<value>.*)$",
    re.IGNORECASE,
)
_CLIP = re.compile(r"^\+CLIP\s*:\s*(?P<rest>.*)$", re.IGNORECASE)
_CSV_ITEM = re.compile(r'\s*(?:"([^"]*)"|([^,]*))\s*(?:,|$)')

_NUMBER_KEYS = {"NMBR", "DDN_NMBR", "CALLER NUMBER", "CALLER ID"}
_NAME_KEYS = {"NAME", "CALLER NAME"}


def _csv(text: str) -> list[str]:
    items: list[str] = []
    pos = 0
    while pos <= len(text):
        m = _CSV_ITEM.match(text, pos)
        if m is None or m.end() == pos:
            break
        items.append(m.group(1) if m.group(1) is not None else (m.group(2) or "").strip())
        pos = m.end()
    return items


class ModemParser:
    """Pure parser of a modem's output; holds only the state of the current call."""

    def __init__(
        self,
        source: str,
        line: str,
        *,
        ring_end_s: float = 8.0,
        cid_flush_s: float = 0.3,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        id_factory: IdFactory | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.ring_end_s = ring_end_s
        self.cid_flush_s = cid_flush_s
        self._clock = clock
        self._monotonic = monotonic
        self._new_id = id_factory or (lambda: new_call_id("modem"))
        self.call_id: str | None = None
        self.rings = 0
        self.emitted = False
        self._last_activity = 0.0
        self._pending_number: str | None = None
        self._pending_name = ""
        self._pending_at = 0.0
        self._emitted_raw: str | None = None
        self._after_cr = False

    @property
    def active(self) -> bool:
        """True while a call is ringing (or its caller ID is being received)."""
        return self.call_id is not None

    def feed(self, buffer: bytes) -> FeedResult:
        """Parse ``buffer`` (previous leftover + new bytes); return events and leftover."""
        if self._after_cr and buffer[:1] == b"\n":
            buffer = buffer[1:]  # the LF of a CRLF split across two reads
        if buffer:
            self._after_cr = False
        lines, leftover = split_lines(buffer)
        if lines and not leftover and buffer.endswith(b"\r"):
            self._after_cr = True
        events: list[CallEvent] = []
        for raw in lines:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp932", "replace")  # Japanese devices
            self._line(text.strip(), events)
        return FeedResult(events, leftover)

    def check_timeout(self, now: float | None = None) -> list[CallEvent]:
        """Flush a quiet pending caller ID block and end a call whose RINGs stopped."""
        now = self._monotonic() if now is None else now
        events: list[CallEvent] = []
        if self._pending_number is not None and now - self._pending_at >= self.cid_flush_s:
            self._emit_pending(events)
        if self.call_id is not None and now - self._last_activity >= self.ring_end_s:
            self._end(events, "ring_stopped")
        return events

    def flush(self) -> list[CallEvent]:
        """Emit a pending caller ID block now."""
        events: list[CallEvent] = []
        self._emit_pending(events)
        return events

    # -- internals -------------------------------------------------------------------------

    def _line(self, text: str, events: list[CallEvent]) -> None:
        if not text:
            self._emit_pending(events)
            return
        upper = text.upper()
        if upper == "RING" or upper.startswith(("RING ", "+CRING")):
            self._ring(events)
            return
        m = _FIELD.match(text)
        if m is not None:
            key = re.sub(r"\s+", " ", m.group("key").upper())
            value = m.group("value").strip()
            if key in _NUMBER_KEYS:
                self._cid(value, None, events)
            elif key in _NAME_KEYS:
                self._pending_name = "" if value.upper() in ("P", "O") else clean_name(value)
                self._touch()
                if self._pending_number is not None:
                    self._emit_pending(events)
            else:  # DATE, TIME, MESG: part of the block, nothing to keep
                self._touch()
            return
        m = _CLIP.match(text)
        if m is not None:
            items = _csv(m.group("rest"))
            number = items[0] if items else ""
            if len(items) > 1 and items[1] == "145" and number and not number.startswith("+"):
                number = "+" + number  # type 145: international format
            name = items[4] if len(items) > 4 else ""
            validity = items[5] if len(items) > 5 else ""
            name = clean_name(name)
            if not number and validity == "1":
                number = "P"
            elif not number and validity == "2":
                number = "O"
            self._cid(number, name, events)
            self._emit_pending(events)
            return
        # OK, ERROR, NO CARRIER, echoed AT commands …: end of a caller ID block.
        self._emit_pending(events)

    def _touch(self) -> None:
        now = self._monotonic()
        self._last_activity = now
        if self.call_id is None:
            self._start()

    def _start(self) -> None:
        self.call_id = self._new_id()
        self.rings = 0
        self.emitted = False
        self._emitted_raw = None

    def _cid(self, number: str, name: str | None, events: list[CallEvent]) -> None:
        if self.call_id is not None and self.emitted:
            if number == self._emitted_raw:
                self._touch()
                return  # repeated caller ID of the same call
            self._end(events, "ring_stopped")  # a new call started before the timeout
        self._touch()
        self._pending_number = number
        if name is not None:
            self._pending_name = name
        self._pending_at = self._monotonic()

    def _ring(self, events: list[CallEvent]) -> None:
        self._touch()
        self.rings += 1
        if self._pending_number is not None:
            self._emit_pending(events)
        elif self.rings >= 2 and not self.emitted:
            self._emit_ringing("", "", events)

    def _emit_pending(self, events: list[CallEvent]) -> None:
        if self._pending_number is None:
            return
        number, name = self._pending_number, self._pending_name
        self._pending_number = None
        self._pending_name = ""
        if self.call_id is None:
            self._start()
        if not self.emitted:
            self._emit_ringing(number, name, events)

    def _emit_ringing(self, raw: str, name: str, events: list[CallEvent]) -> None:
        assert self.call_id is not None
        caller = normalise_caller(raw)
        events.append(
            CallRinging(
                source=self.source,
                call_id=self.call_id,
                line=self.line,
                at=self._clock(),
                extension=None,
                caller_raw=raw,
                number=caller.number_e164,
                withheld=caller.withheld,
                caller_name=name,
            )
        )
        self.emitted = True
        self._emitted_raw = raw

    def _end(self, events: list[CallEvent], reason: str) -> None:
        if self.call_id is not None and self.emitted:
            events.append(
                CallEnded(
                    source=self.source,
                    call_id=self.call_id,
                    line=self.line,
                    at=self._clock(),
                    answered=False,
                    reason=reason,
                )
            )
        self.call_id = None
        self.rings = 0
        self.emitted = False
        self._emitted_raw = None
        self._pending_number = None
        self._pending_name = ""


class ModemSource(Source):
    """Caller ID modem on a serial port (``kind = "modem"``)."""

    kind = "modem"
    can_dial = True
    init_timeout_s = 2.0
    tick_s = 0.1

    def __init__(self, config: ModemSourceConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self._link: SerialLink | None = None
        self._emit: Emit | None = None
        self._parser: ModemParser | None = None
        self._release: asyncio.Task[None] | None = None

    async def run(self, emit: Emit) -> None:
        """Open the port, initialise the modem and emit call events until the port is lost."""
        link = SerialLink(self.cfg.port, baudrate=self.cfg.baudrate)
        await link.open()
        parser = ModemParser(self.name, self.line, ring_end_s=self.cfg.ring_end_s)
        try:
            pending = await self._init(link)
            self._link, self._emit, self._parser = link, emit, parser
            self.mark_up()
            buffer = pending
            while True:
                events: list[CallEvent] = []
                if buffer:
                    res = parser.feed(buffer)
                    buffer = res.leftover
                    events.extend(res.events)
                events.extend(parser.check_timeout())
                for event in events:
                    await emit(event)
                buffer += await link.read(self.tick_s)
        finally:
            self._link = self._emit = self._parser = None
            if self._release is not None:
                self._release.cancel()
                self._release = None
            link.close()

    async def _init(self, link: SerialLink) -> bytes:
        """Send each init string and wait for OK/ERROR; return all bytes read meanwhile."""
        received = b""
        for command in self.cfg.init:
            link.write(command.encode("ascii") + b"\r")
            start = len(received)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.init_timeout_s
            answer = ""
            while not answer:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                received += await link.read(remaining)
                for line in split_lines(received[start:])[0]:
                    word = line.strip().upper()
                    if word in (b"OK", b"ERROR"):
                        answer = word.decode()
                        break
            if answer != "OK":
                log.warning("%s: %s answered %s", self.name, command, answer or "nothing")
        return received

    async def dial(self, extension: str | None, number: str, *, call_id: str | None = None) -> str:
        """Dial ``number`` with ``ATD…;`` and release the modem after ``dial_release_s``."""
        link, emit, parser = self._link, self._emit, self._parser
        if link is None or emit is None or parser is None:
            raise DialError(f"{self.name}: modem not connected")
        if parser.active:
            raise DialError(f"{self.name}: line is ringing")
        digits = dialable(number)
        if not digits:
            raise DialError(f"{self.name}: nothing to dial in {number!r}")
        call_id = call_id or new_call_id("modem-out")
        try:
            link.write(f"ATD{self.cfg.dial_prefix}{digits};\r".encode("ascii"))
        except ConnectionError as exc:
            raise DialError(str(exc)) from exc
        if self._release is not None:
            self._release.cancel()
        self._release = asyncio.create_task(self._hang_up_later(link))
        await emit(
            OutboundDialing(
                source=self.name,
                call_id=call_id,
                line=self.line,
                extension=extension,
                number=number,
            )
        )
        return call_id

    async def _hang_up_later(self, link: SerialLink) -> None:
        await asyncio.sleep(self.cfg.dial_release_s)
        with contextlib.suppress(ConnectionError):
            link.write(b"ATH\r")
