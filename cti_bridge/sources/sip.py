"""SIP over UDP: a listening endpoint that the PBX rings (ring group leg) or mirrors INVITEs to.

Parser
------
:func:`parse_message` reads one datagram (compact header forms ``f t i v m l c k`` too, folded
lines, comma-separated values). :class:`SipEndpoint` is a pure state machine: it turns requests
into call events and the response datagrams to send back.

* ``INVITE`` (new Call-ID) → :class:`~cti_bridge.events.CallRinging`, ``100 Trying`` and
  ``180 Ringing``. The caller comes from ``P-Asserted-Identity`` > ``Remote-Party-ID`` >
  ``From``. ``Privacy: id``/``user``/``header`` or ``Remote-Party-ID;privacy=full|uri`` make
  the caller withheld even when an asserted number is present (the number is then not carried
  in the event at all). An anonymous From (``anonymous`` user or ``anonymous.invalid`` host)
  with an asserted number and no such privacy request gives the asserted number (RFC 3325:
  many trunks send an anonymous From); without an asserted number it is withheld. The From
  display names of TTC JJ-90.30 / 3GPP OIR ("Anonymous", "Coin line/payphone", "Interaction
  with other service", "Unavailable") give the reason (非通知, 公衆電話, 表示圏外, 通知不可).
  The extension is the Request-URI user, else the To user; the call id is the Call-ID.
* The final response (``final_response``, default ``486 Busy Here``) is sent ``final_after_s``
  after the INVITE (0 = at once). We are a monitor, not a phone: we must never answer (a 200
  would take the call away from the operators' phones), and a busy leg makes a ring group or
  hunt group carry on with its other members. Holding the leg in ``180`` until then lets us
  learn how the ringing ended from the ``CANCEL``: ``Reason: SIP;cause=200`` ("call completed
  elsewhere") → :class:`~cti_bridge.events.CallEnded` ``(answered=True,
  reason="answered_elsewhere")`` (we never learn when that call ends); any other CANCEL
  → :class:`~cti_bridge.events.CallEnded` ``(answered=False, reason="cancelled")``.
* ``CANCEL`` → ``200 OK`` then ``487 Request Terminated`` for the INVITE; ``BYE`` → ``200 OK``
  (and ``CallEnded(answered=True, reason="bye")`` for a known call); ``OPTIONS`` (qualify)
  → ``200 OK``; ``ACK`` absorbs the final; other methods → ``405``; unknown dialogs → ``481``.
* Retransmitted requests (same Call-ID, CSeq and method) get the last response again and no
  second event. Finals are retransmitted (500 ms doubling to 4 s) until ACKed, for 32 s.
* Responses go back to the packet's source address and port (as with ``rport``); ``received``
  and ``rport`` are filled in on the top Via.

I/O
---
:class:`SipSource` is an asyncio datagram endpoint bound to ``host:port``; datagrams from
addresses outside ``allowed_peers`` (IP addresses or CIDR networks) are dropped and logged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import unquote

from cti_bridge.config import SipSourceConfig
from cti_bridge.events import ANSWERED_ELSEWHERE, CallEnded, CallEvent, CallRinging, utcnow
from cti_bridge.numbers import clean_name, normalise_caller, withheld_from_text
from cti_bridge.source import Emit, Source
from cti_bridge.sources.common import Clock

__all__ = [
    "REASONS",
    "SipEndpoint",
    "SipMessage",
    "SipParseError",
    "SipResult",
    "SipSource",
    "caller_of",
    "parse_message",
    "parse_name_addr",
]

log = logging.getLogger(__name__)

COMPACT = {
    "f": "from",
    "t": "to",
    "i": "call-id",
    "v": "via",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "u": "allow-events",
}
# Headers whose values may be joined by commas on one line (RFC 3261 7.3.1).
_LIST_HEADERS = {"via", "p-asserted-identity", "remote-party-id", "privacy", "contact"}

REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    600: "Busy Everywhere",
    603: "Decline",
}
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
TIMER_T1 = 0.5
TIMER_T2 = 4.0
TIMER_H = 32.0  # 64 * T1: how long a finished transaction is remembered
MAX_CALLS = 4096


class SipParseError(ValueError):
    """The datagram is not a SIP message."""


@dataclass(slots=True)
class SipMessage:
    """A parsed SIP request (``method`` set) or response (``status`` set)."""

    method: str
    uri: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    peer: tuple[str, int] | None = None

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (lower-case long form), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def values(self, name: str) -> list[str]:
        """All values of header ``name``, comma-separated lists split."""
        out: list[str] = []
        for key, value in self.headers:
            if key == name:
                out.extend(_split_commas(value) if name in _LIST_HEADERS else [value])
        return out

    @property
    def call_id(self) -> str:
        """The Call-ID header ('' when missing)."""
        return self.header("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        """CSeq number and method."""
        value = self.header("cseq") or ""
        parts = value.split()
        if len(parts) != 2 or not _ascii_int(parts[0], 10):
            raise SipParseError(f"bad CSeq {value!r}")
        return int(parts[0]), parts[1].upper()


def _ascii_int(text: str, max_digits: int) -> bool:
    """True when ``text`` is 1..``max_digits`` ASCII digits (``str.isdigit`` also accepts
    superscripts and other scripts' digits, which ``int`` then refuses or misreads)."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def _split_commas(value: str) -> list[str]:
    items: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and ch == ",":
            items.append(value[start:i].strip())
            start = i + 1
    items.append(value[start:].strip())
    return [i for i in items if i]


def parse_message(data: bytes) -> SipMessage:
    """Parse one SIP datagram; raises :class:`SipParseError`."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    text = head.decode("utf-8", "replace").lstrip("\r\n")
    lines = re.split(r"\r?\n", text)
    if not lines or not lines[0]:
        raise SipParseError("empty message")
    start = lines[0].split(" ", 2)
    method, uri, status, reason = "", "", 0, ""
    if start[0] == "SIP/2.0" and len(start) >= 2 and _ascii_int(start[1], 3):
        status, reason = int(start[1]), start[2] if len(start) > 2 else ""
    elif (
        len(start) == 3
        and start[2].strip() == "SIP/2.0"
        and start[0].isascii()
        and start[0].isalpha()
    ):
        method, uri = start[0].upper(), start[1]
    else:
        raise SipParseError(f"bad start line {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"bad header line {line[:80]!r}")
        key = name.strip().lower()
        headers.append((COMPACT.get(key, key), value.strip()))
    length = next((v for k, v in headers if k == "content-length"), None)
    if length is not None:
        if not _ascii_int(length.strip(), 10):
            raise SipParseError(f"bad Content-Length {length[:20]!r}")
        body = body[: int(length.strip())]
    msg = SipMessage(method, uri, status, reason, headers, body)
    if not msg.call_id:
        raise SipParseError("no Call-ID")
    return msg


class NameAddr(NamedTuple):
    """A parsed ``name-addr`` / ``addr-spec`` header value."""

    display: str
    uri: str
    user: str
    host: str
    params: dict[str, str]


def _params(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if part:
            key, _, value = part.partition("=")
            out[key.strip().lower()] = value.strip().strip('"')
    return out


def _uri_user_host(uri: str) -> tuple[str, str]:
    scheme, _, rest = uri.partition(":")
    scheme = scheme.lower()
    if scheme == "tel":
        return unquote(rest.split(";", 1)[0]), ""
    if scheme not in ("sip", "sips"):
        return "", ""
    userinfo, at, hostport = rest.partition("@")
    if not at:
        return "", userinfo.split(";", 1)[0]
    user = userinfo.split(":", 1)[0]  # drop a password
    host = re.split(r"[;:?>]", hostport, maxsplit=1)[0]
    return unquote(user), host.lower()


def parse_name_addr(value: str) -> NameAddr:
    """Parse ``"Name" <sip:user@host;uri-params>;params`` or ``sip:user@host;params``."""
    value = value.strip()
    lt = value.find("<")
    if lt >= 0:
        gt = value.find(">", lt)
        if gt < 0:
            gt = len(value)
        display = value[:lt].strip().strip('"').strip()
        uri = value[lt + 1 : gt].strip()
        params = _params(value[gt + 1 :])
    else:
        display = ""
        uri, _, rest = value.partition(";")
        uri = uri.strip()
        params = _params(rest)
    user, host = _uri_user_host(uri)
    return NameAddr(display, uri, user, host, params)


class Caller(NamedTuple):
    """Caller fields for a ringing event."""

    raw: str
    name: str
    withheld: str


_PRIVACY_WITHHOLD = {"id", "user", "header"}
_ASCII_DIGITS = frozenset("0123456789")


def caller_of(msg: SipMessage) -> Caller:
    """Return the caller of an INVITE (see the module doc for the precedence rules)."""
    from_value = msg.header("from") or ""
    frm = parse_name_addr(from_value)
    identity = frm
    for name in ("p-asserted-identity", "remote-party-id"):
        values = [parse_name_addr(v) for v in msg.values(name)]
        values = [v for v in values if v.user]
        if values:
            # Prefer a tel: URI or a user that is a number.
            values.sort(key=lambda v: 0 if v.uri.lower().startswith("tel:") else 1)
            identity = values[0]
            break
    privacy = {
        token.strip().lower()
        for value in msg.values("privacy")
        for token in re.split(r"[;,\s]+", value)
        if token.strip()
    }
    rpid = msg.values("remote-party-id")
    rpid_privacy = parse_name_addr(rpid[0]).params.get("privacy", "") if rpid else ""
    display_code = withheld_from_text(frm.display) if frm.display else ""
    anonymous_from = frm.user.lower() == "anonymous" or frm.host.endswith("anonymous.invalid")
    raw_from = frm.user or frm.display
    if privacy & _PRIVACY_WITHHOLD or rpid_privacy.lower() in ("full", "uri"):
        return Caller(raw_from if anonymous_from else "anonymous", "", display_code or "private")
    asserted = identity is not frm and any(ch in _ASCII_DIGITS for ch in identity.user)
    if anonymous_from and not asserted:
        return Caller(raw_from, "", display_code or "private")
    # RFC 3325: without ``Privacy: id`` a trusted asserted identity is the caller, even when
    # the From is anonymous (many trunks send ``anonymous`` in From and the number in PAI).
    user = identity.user
    if not any(ch in _ASCII_DIGITS for ch in user):
        code = display_code or withheld_from_text(user) or "unavailable"
        return Caller(user, "", code)
    name = clean_name(identity.display or frm.display)
    if name and (withheld_from_text(name) or not any(ch.isalpha() for ch in name)):
        name = ""
    return Caller(user, name, "")


@dataclass(slots=True)
class _Call:
    invite: SipMessage
    peer: tuple[str, int]
    cseq: int
    to_tag: str
    created: float
    last_response: bytes = b""
    final: bytes = b""
    final_at: float = 0.0
    acked: bool = False
    ended: bool = False


@dataclass(slots=True)
class SipResult:
    """Outcome of one datagram: events to emit, responses to send, INVITE to finalise later."""

    events: list[CallEvent] = field(default_factory=list)
    responses: list[bytes] = field(default_factory=list)
    schedule_final: str = ""
    finals: list[str] = field(default_factory=list)


class SipEndpoint:
    """Pure SIP UAS state machine (no sockets)."""

    def __init__(
        self,
        source: str,
        line: str,
        *,
        final_response: int = 486,
        final_after_s: float = 0.0,
        server: str = "YEBISU-CTI",
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        tag_factory: Callable[[], str] | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.final_response = final_response
        self.final_after_s = final_after_s
        self.server = server
        self._clock = clock
        self._monotonic = monotonic
        self._tag = tag_factory or (lambda: secrets.token_hex(6))
        self.calls: dict[str, _Call] = {}
        self._other: dict[tuple[str, int, str], tuple[bytes, float]] = {}

    # -- entry points ---------------------------------------------------------------------

    def handle(self, data: bytes, peer: tuple[str, int]) -> SipResult:
        """Handle one datagram from ``peer``; malformed ones give an empty result."""
        result = SipResult()
        if not data.strip():
            return result  # CRLF keep-alive
        try:
            msg = parse_message(data)
            msg.peer = peer
            if msg.status:
                return result  # responses are not expected: we send no requests
            cseq, _ = msg.cseq
        except SipParseError as exc:
            log.info("%s: dropped malformed datagram from %s: %s", self.source, peer[0], exc)
            return result
        self.purge()
        method = msg.method
        if method == "INVITE":
            self._invite(msg, cseq, peer, result)
        elif method == "ACK":
            call = self.calls.get(msg.call_id)
            if call is not None and call.final and cseq == call.cseq:
                call.acked = True
        else:
            key = (msg.call_id, cseq, method)
            cached = self._other.get(key)
            if cached is not None:
                result.responses.append(cached[0])
                return result
            if method == "CANCEL":
                self._cancel(msg, cseq, result)
            elif method == "BYE":
                self._bye(msg, result)
            elif method == "OPTIONS":
                result.responses.append(self._response(msg, 200, self._tag(), allow=True))
            else:
                result.responses.append(self._response(msg, 405, self._tag(), allow=True))
            if result.responses:
                self._other[key] = (result.responses[0], self._monotonic())
        return result

    def final(self, call_id: str) -> bytes | None:
        """Build the final response for a still-ringing INVITE (None when already final)."""
        call = self.calls.get(call_id)
        if call is None or call.final:
            return None
        return self._finalise(call, self.final_response)

    def retransmit(self, call_id: str) -> bytes | None:
        """The final response again when it is not ACKed yet and not older than 32 s."""
        call = self.calls.get(call_id)
        if call is None or not call.final or call.acked:
            return None
        if self._monotonic() - call.final_at > TIMER_H:
            return None
        return call.final

    def purge(self, now: float | None = None) -> None:
        """Forget finished transactions older than 32 s (and the oldest beyond a cap)."""
        now = self._monotonic() if now is None else now
        for call_id in [k for k, c in self.calls.items() if c.final and now - c.final_at > TIMER_H]:
            del self.calls[call_id]
        for key in [k for k, (_, at) in self._other.items() if now - at > TIMER_H]:
            del self._other[key]
        while len(self.calls) > MAX_CALLS:
            del self.calls[next(iter(self.calls))]
        while len(self._other) > MAX_CALLS:
            del self._other[next(iter(self._other))]

    # -- requests -------------------------------------------------------------------------

    def _invite(self, msg: SipMessage, cseq: int, peer: tuple[str, int], res: SipResult) -> None:
        call = self.calls.get(msg.call_id)
        if call is not None:
            if cseq == call.cseq:
                res.responses.append(call.final or call.last_response)  # retransmission
            else:
                res.responses.append(self._response(msg, self.final_response, call.to_tag))
            return
        call = _Call(msg, peer, cseq, self._tag(), self._monotonic())
        self.calls[msg.call_id] = call
        caller = caller_of(msg)
        number = normalise_caller(caller.raw) if not caller.withheld else None
        ruri_user, _ = _uri_user_host(msg.uri)
        to_user = parse_name_addr(msg.header("to") or "").user
        res.events.append(
            CallRinging(
                source=self.source,
                call_id=msg.call_id,
                line=self.line,
                at=self._clock(),
                extension=ruri_user or to_user or None,
                caller_raw=caller.raw,
                number=number.number_e164 if number else "",
                withheld=caller.withheld or (number.withheld if number else ""),
                caller_name=caller.name,
            )
        )
        res.responses.append(self._response(msg, 100, ""))
        call.last_response = self._response(msg, 180, call.to_tag, contact=True)
        res.responses.append(call.last_response)
        if self.final_after_s <= 0:
            res.responses.append(self._finalise(call, self.final_response))
            res.finals.append(msg.call_id)
        else:
            res.schedule_final = msg.call_id

    def _cancel(self, msg: SipMessage, cseq: int, res: SipResult) -> None:
        call = self.calls.get(msg.call_id)
        if call is None or call.cseq != cseq:
            res.responses.append(self._response(msg, 481, self._tag()))
            return
        res.responses.append(self._response(msg, 200, call.to_tag))
        if call.final:
            return
        res.responses.append(self._finalise(call, 487))
        res.finals.append(msg.call_id)
        reason = _params(msg.header("reason") or "")
        if not call.ended:
            call.ended = True
            elsewhere = "completed elsewhere" in reason.get("text", "").lower()
            if reason.get("cause") == "200" or elsewhere:
                # Answered by another phone: we hear nothing more of this call (no BYE).
                res.events.append(
                    CallEnded(
                        source=self.source,
                        call_id=msg.call_id,
                        line=self.line,
                        at=self._clock(),
                        answered=True,
                        reason=ANSWERED_ELSEWHERE,
                    )
                )
            else:
                res.events.append(
                    CallEnded(
                        source=self.source,
                        call_id=msg.call_id,
                        line=self.line,
                        at=self._clock(),
                        answered=False,
                        reason="cancelled",
                    )
                )

    def _bye(self, msg: SipMessage, res: SipResult) -> None:
        call = self.calls.get(msg.call_id)
        if call is None:
            res.responses.append(self._response(msg, 481, self._tag()))
            return
        res.responses.append(self._response(msg, 200, call.to_tag))
        if not call.ended:
            call.ended = True
            res.events.append(
                CallEnded(
                    source=self.source,
                    call_id=msg.call_id,
                    line=self.line,
                    at=self._clock(),
                    answered=True,
                    reason="bye",
                )
            )

    # -- responses ------------------------------------------------------------------------

    def _finalise(self, call: _Call, status: int) -> bytes:
        call.final = self._response(call.invite, status, call.to_tag)
        call.final_at = self._monotonic()
        call.last_response = call.final
        return call.final

    def _response(
        self,
        req: SipMessage,
        status: int,
        to_tag: str,
        *,
        contact: bool = False,
        allow: bool = False,
    ) -> bytes:
        lines = [f"SIP/2.0 {status} {REASONS.get(status, 'Unknown')}"]
        vias = req.values("via")
        for i, via in enumerate(vias):
            lines.append(f"Via: {_fill_via(via, req.peer) if i == 0 else via}")
        lines.append(f"From: {req.header('from') or ''}")
        to = req.header("to") or ""
        if to_tag and status != 100 and ";tag=" not in to.replace(" ", "").lower():
            to = f"{to};tag={to_tag}"
        lines.append(f"To: {to}")
        lines.append(f"Call-ID: {req.call_id}")
        lines.append(f"CSeq: {req.header('cseq') or ''}")
        if contact:
            uri = req.uri.split(";", 1)[0]
            lines.append(f"Contact: <{uri}>")
        if allow:
            lines.append(f"Allow: {ALLOW}")
        lines.append(f"Server: {self.server}")
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _fill_via(via: str, peer: tuple[str, int] | None) -> str:
    """Add ``received``/``rport`` to the top Via (RFC 3261 18.2.1, RFC 3581)."""
    if peer is None:
        return via
    host, port = peer
    parts = via.split(";")
    sent_by = parts[0].split()[-1] if parts[0].split() else ""
    sent_host = sent_by.rsplit(":", 1)[0].strip("[]") if ":" in sent_by else sent_by
    out = [parts[0]]
    has_received = False
    for p in parts[1:]:
        key = p.strip().split("=", 1)[0].lower()
        if key == "rport" and "=" not in p:
            out.append(f"rport={port}")
        elif key == "received":
            has_received = True
            out.append(p)
        else:
            out.append(p)
    needs_received = any(p.strip().lower().startswith("rport") for p in parts[1:])
    if not has_received and (needs_received or sent_host != host):
        out.append(f"received={host}")
    return ";".join(out)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, source: SipSource) -> None:
        self.source = source

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.source._datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: socket error %s", self.source.name, exc)  # e.g. ICMP port unreachable

    def connection_lost(self, exc: Exception | None) -> None:
        self.source._lost(exc)


class SipSource(Source):
    """UDP SIP endpoint (``kind = "sip"``); see the module doc."""

    kind = "sip"

    def __init__(self, config: SipSourceConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self.endpoint = SipEndpoint(
            self.name,
            self.line,
            final_response=config.final_response,
            final_after_s=config.final_after_s,
        )
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for peer in config.allowed_peers:
            try:
                self._networks.append(ipaddress.ip_network(peer, strict=False))
            except ValueError:
                log.error("%s: allowed_peers entry %r is not an address", self.name, peer)
        self._transport: asyncio.DatagramTransport | None = None
        self._queue: asyncio.Queue[CallEvent | BaseException | None] = asyncio.Queue()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._warned: set[str] = set()
        self.bound: tuple[str, int] | None = None

    async def run(self, emit: Emit) -> None:
        """Bind the UDP socket and emit events until the socket is closed."""
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        if not self._networks:
            log.warning("%s: allowed_peers is empty: every datagram will be dropped", self.name)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.cfg.host, self.cfg.port)
        )
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        self.bound = (str(sockname[0]), int(sockname[1]))
        log.info("%s: listening on udp %s:%s", self.name, *self.bound)
        try:
            self.mark_up()
            while True:
                item = await self._queue.get()
                if item is None:
                    raise ConnectionError(f"{self.name}: socket closed")
                if isinstance(item, BaseException):
                    raise ConnectionError(f"{self.name}: socket lost: {item}") from item
                await emit(item)
        finally:
            for handle in self._timers.values():
                handle.cancel()
            self._timers.clear()
            self._transport = None
            transport.close()

    def _allowed(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self._networks)

    def _datagram(self, data: bytes, peer: tuple[str, int]) -> None:
        if not self._allowed(peer[0]):
            if peer[0] not in self._warned and len(self._warned) < 1000:
                self._warned.add(peer[0])
                log.warning("%s: dropped datagram from %s (not allowed)", self.name, peer[0])
            return
        result = self.endpoint.handle(data, peer)
        for response in result.responses:
            self._send(response, peer)
        for event in result.events:
            self._queue.put_nowait(event)
        if result.schedule_final:
            self._schedule(result.schedule_final, self.endpoint.final_after_s, peer, 0.0)
        for call_id in result.finals:
            self._schedule(call_id, TIMER_T1, peer, TIMER_T1)

    def _schedule(self, call_id: str, delay: float, peer: tuple[str, int], step: float) -> None:
        loop = asyncio.get_running_loop()
        old = self._timers.pop(call_id, None)
        if old is not None:
            old.cancel()
        self._timers[call_id] = loop.call_later(delay, self._timer, call_id, peer, step)

    def _timer(self, call_id: str, peer: tuple[str, int], step: float) -> None:
        self._timers.pop(call_id, None)
        if step == 0.0:  # time for the final response
            data = self.endpoint.final(call_id)
            if data is not None:
                self._send(data, peer)
                self._schedule(call_id, TIMER_T1, peer, TIMER_T1)
            return
        data = self.endpoint.retransmit(call_id)
        if data is not None:
            self._send(data, peer)
            nxt = min(step * 2, TIMER_T2)
            self._schedule(call_id, nxt, peer, nxt)

    def _send(self, data: bytes, peer: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(data, peer)

    def _lost(self, exc: Exception | None) -> None:
        self._queue.put_nowait(exc)
