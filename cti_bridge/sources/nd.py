"""Number Display (ナンバー・ディスプレイ) adapter on a serial port.

Frame layout (one frame per incoming call, sent before the first ring)::

    STX  MMDD  w  HHMM  number  ETX

``STX`` = 0x02, ``ETX`` = 0x03; ``MMDD``/``HHMM`` are the exchange's date and time (JST),
``w`` is one character (weekday on most adapters) and ``number`` the caller's national number
without hyphens, or a one-letter reason: ``P`` 非通知, ``O``/``S`` 表示圏外, ``C`` 公衆電話,
``E`` 受信エラー. Adapters differ, so the parser is liberal:

* the parity bit is masked off every byte (``& 0x7F``), so a port opened 8N1 on a 7E1 device
  still works;
* fields may be packed (``03213140503…``: fixed widths 4/1/4/rest) or separated by spaces or
  commas (``0321 3 1405 0312345678``), and the weekday may be missing in the separated form;
* bytes outside ``STX…ETX`` (noise, a trailing BCC/checksum byte) are skipped; a frame cut off
  by a new ``STX`` is dropped silently; a frame longer than 64 bytes is dropped with NAK.

A complete frame is answered with ACK (0x06) when valid and NAK (0x15) when not (the adapter
then resends). The same frame arriving again within 10 s (our ACK got lost) is ACKed again but
not reported twice. Number Display does not signal the end of ringing, so this source only
emits :class:`~cti_bridge.events.CallRinging`; the app's ``cti.ring_timeout_s`` ends the call.
The exchange's MMDD/HHMM is ignored: events carry the receive time.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from cti_bridge.config import NdSourceConfig
from cti_bridge.events import CallEvent, CallRinging, utcnow
from cti_bridge.numbers import normalise_caller
from cti_bridge.serialio import SerialLink
from cti_bridge.source import Emit, Source
from cti_bridge.sources.common import Clock, FeedResult, IdFactory, new_call_id

__all__ = ["ACK", "ETX", "NAK", "STX", "NdFrame", "NdParser", "NdSource", "parse_frame"]

log = logging.getLogger(__name__)

STX = 0x02
ETX = 0x03
ACK = b"\x06"
NAK = b"\x15"
MAX_FRAME = 64
_MASK = bytes(b & 0x7F for b in range(256))
_SEP = re.compile(r"[\s,]+")
_NUMBER = re.compile(r"^(?:[0-9]{1,20}|[POSCE])$")


class NdFrame:
    """A decoded frame: date ``MMDD``, time ``HHMM`` and the caller string."""

    __slots__ = ("hhmm", "mmdd", "number")

    def __init__(self, mmdd: str, hhmm: str, number: str) -> None:
        self.mmdd = mmdd
        self.hhmm = hhmm
        self.number = number


def _valid_mmdd(s: str) -> bool:
    return (
        len(s) == 4
        and s.isascii()
        and s.isdigit()
        and 1 <= int(s[:2]) <= 12
        and 1 <= int(s[2:]) <= 31
    )


def _valid_hhmm(s: str) -> bool:
    return len(s) == 4 and s.isascii() and s.isdigit() and int(s[:2]) <= 23 and int(s[2:]) <= 59


def parse_frame(body: bytes) -> NdFrame | None:
    """Decode the bytes between STX and ETX (parity already masked); None when invalid."""
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    tokens = [t for t in _SEP.split(text) if t]
    if len(tokens) >= 4:
        mmdd, hhmm, number = tokens[0], tokens[2], "".join(tokens[3:])
        if len(tokens[1]) != 1:
            return None
    elif len(tokens) == 3:
        mmdd, hhmm, number = tokens
    elif len(tokens) == 1 and len(tokens[0]) >= 10:
        packed = tokens[0]
        mmdd, hhmm, number = packed[0:4], packed[5:9], packed[9:]
    else:
        return None
    number = number.replace("-", "").upper()
    if not (_valid_mmdd(mmdd) and _valid_hhmm(hhmm) and _NUMBER.match(number)):
        return None
    return NdFrame(mmdd, hhmm, number)


class NdParser:
    """Pure parser of Number Display adapter output; returns events, leftover and ACK/NAK."""

    def __init__(
        self,
        source: str,
        line: str,
        *,
        dedupe_s: float = 10.0,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        id_factory: IdFactory | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.dedupe_s = dedupe_s
        self._clock = clock
        self._monotonic = monotonic
        self._new_id = id_factory or (lambda: new_call_id("nd"))
        self._last_body = b""
        self._last_at = float("-inf")

    def feed(self, buffer: bytes) -> FeedResult:
        """Parse ``buffer`` (previous leftover + new bytes)."""
        data = buffer.translate(_MASK)
        events: list[CallEvent] = []
        reply = bytearray()
        pos = 0
        leftover = b""
        while True:
            stx = data.find(STX, pos)
            if stx < 0:
                break
            etx = data.find(ETX, stx + 1)
            next_stx = data.find(STX, stx + 1)
            if next_stx >= 0 and (etx < 0 or next_stx < etx):
                log.debug("%s: frame cut off by a new STX, dropped", self.source)
                pos = next_stx
                continue
            if etx < 0:
                if len(data) - stx > MAX_FRAME:
                    reply += NAK
                else:
                    leftover = data[stx:]
                break
            body = data[stx + 1 : etx]
            pos = etx + 1
            if len(body) > MAX_FRAME:
                reply += NAK
                continue
            reply += self._frame(body, events)
        return FeedResult(events, leftover, bytes(reply))

    def _frame(self, body: bytes, events: list[CallEvent]) -> bytes:
        frame = parse_frame(body)
        if frame is None:
            log.warning("%s: bad frame %r", self.source, body)
            return NAK
        now = self._monotonic()
        if body == self._last_body and now - self._last_at < self.dedupe_s:
            return ACK
        self._last_body, self._last_at = body, now
        caller = normalise_caller(frame.number)
        events.append(
            CallRinging(
                source=self.source,
                call_id=self._new_id(),
                line=self.line,
                at=self._clock(),
                extension=None,
                caller_raw=frame.number,
                number=caller.number_e164,
                withheld=caller.withheld,
            )
        )
        return ACK


class NdSource(Source):
    """Number Display adapter on a serial port (``kind = "nd"``)."""

    kind = "nd"

    def __init__(self, config: NdSourceConfig) -> None:
        super().__init__(config)
        self.cfg = config

    async def run(self, emit: Emit) -> None:
        """Open the port and emit a ringing event per good frame until the port is lost."""
        link = SerialLink(
            self.cfg.port,
            baudrate=self.cfg.baudrate,
            bytesize=self.cfg.bytesize,
            parity=self.cfg.parity,
            stopbits=self.cfg.stopbits,
        )
        await link.open()
        parser = NdParser(self.name, self.line)
        try:
            self.mark_up()
            buffer = b""
            while True:
                buffer += await link.read()
                res = parser.feed(buffer)
                buffer = res.leftover
                if res.reply:
                    link.write(res.reply)
                for event in res.events:
                    await emit(event)
        finally:
            link.close()
