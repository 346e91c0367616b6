"""Asterisk Manager Interface (AMI) client: call events in, ``Originate`` out.

Framing
-------
After the banner line ``Asterisk Call Manager/x.y.z``, AMI sends blocks of ``Key: Value`` lines
ended by a blank line. :class:`AmiFramer` turns bytes into dicts with lower-case keys (values
as sent) plus leftover bytes.

Call tracking
-------------
:class:`AmiCallTracker` ties the legs of one call together by ``Linkedid`` (the Uniqueid of the
first channel; it is the event ``call_id``):

* ``Newchannel`` with ``Uniqueid == Linkedid`` is the inbound leg: caller = its
  ``CallerIDNum``/``CallerIDName`` (``<unknown>``, ``anonymous`` … → withheld).
* ``DialBegin`` (``DestChannel``) and ``AgentCalled`` (``Interface``/``DestChannel``) →
  :class:`~cti_bridge.events.CallRinging` for that extension, once per extension (a ring group
  or queue gives one ringing event per ringing extension, all with the same call id).
  ``PJSIP/201-0000002a``, ``SIP/201-…``, ``Local/201@from-queue-…;1`` and ``Local/201@ctx/n``
  all mean extension ``201``.
* ``DialEnd`` with ``DialStatus: ANSWER``, ``AgentConnect`` or a ``BridgeEnter`` that puts an
  extension's channel in the inbound leg's bridge → :class:`~cti_bridge.events.CallAnswered`
  (once per call).
* ``Hangup`` of the inbound leg → :class:`~cti_bridge.events.CallEnded`.

Only inbound calls are reported as ringing: when ``inbound_contexts`` is set, the inbound leg's
``Context`` must be one of them; otherwise its caller must be an outside number (or withheld),
not a short internal extension. Calls this client originated are reported as
:class:`~cti_bridge.events.OutboundDialing`, then answered/ended.

Originate
---------
:meth:`AmiSource.dial` sends ``Originate`` with ``Channel`` from ``originate_channel``
(``{extension}`` filled in), ``Exten`` = the number to dial (national digits), ``Context`` =
``originate_context``, ``Priority: 1``, ``CallerID``, ``Timeout``, ``Async: true`` and
``ChannelId``/``ActionID`` = our call id, so the call's ``Linkedid`` is our call id. A
``Response: Error`` raises :class:`~cti_bridge.source.DialError`; a later
``OriginateResponse`` with ``Response: Failure`` ends the call (``reason="originate_failed"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cti_bridge.config import AmiSourceConfig
from cti_bridge.events import (
    CallAnswered,
    CallEnded,
    CallEvent,
    CallRinging,
    OutboundDialing,
    utcnow,
)
from cti_bridge.numbers import clean_name, dialable, normalise_caller
from cti_bridge.source import DialError, Emit, Source, SourceError
from cti_bridge.sources.common import Clock, new_call_id

__all__ = [
    "AmiCallTracker",
    "AmiFramer",
    "AmiMessage",
    "AmiSource",
    "build_action",
    "extension_of",
    "login_action",
    "originate_action",
]

log = logging.getLogger(__name__)

AmiMessage = dict[str, str]

BANNER = b"Asterisk Call Manager/"
_BLOCK_END = re.compile(rb"\r?\n\r?\n")
_LINE = re.compile(rb"\r?\n")
_SAFE_VALUE = re.compile(r"^[^\r\n]*$")
_EXTENSION = re.compile(r"^[0-9A-Za-z_.*#+-]{1,40}$")
# Tech/resource[-suffix][;n]: PJSIP/201-0000002a, Local/201@from-queue-00000001;1
_CHANNEL = re.compile(r"^(?P<tech>[^/]+)/(?P<res>.+?)(?:-[0-9a-fA-F]{8})?(?:;[0-9]+)?$")
_UNKNOWN = {"", "<unknown>", "unknown"}


class AmiFramer:
    """Pure AMI framing: bytes → messages (dicts with lower-case keys) + leftover."""

    def __init__(self) -> None:
        self.banner: str | None = None

    def feed(self, buffer: bytes) -> tuple[list[AmiMessage], bytes]:
        """Parse ``buffer`` (previous leftover + new bytes)."""
        messages: list[AmiMessage] = []
        if self.banner is None:
            eol = buffer.find(b"\n")
            if eol < 0:
                if BANNER.startswith(buffer[: len(BANNER)]):
                    return messages, buffer  # maybe a banner still arriving
                self.banner = ""
            else:
                first = buffer[:eol].rstrip(b"\r")
                if first.startswith(BANNER):
                    self.banner = first.decode("utf-8", "replace")
                    buffer = buffer[eol + 1 :]
                else:
                    self.banner = ""
        pos = 0
        while True:
            m = _BLOCK_END.search(buffer, pos)
            if m is None:
                break
            block = buffer[pos : m.start()]
            pos = m.end()
            msg = _parse_block(block)
            if msg:
                messages.append(msg)
        return messages, buffer[pos:]


def _parse_block(block: bytes) -> AmiMessage:
    msg: AmiMessage = {}
    for raw in _LINE.split(block):
        if not raw.strip():
            continue
        line = raw.decode("utf-8", "replace")
        key, colon, value = line.partition(":")
        if not colon:
            msg["output"] = (msg.get("output", "") + "\n" + line).lstrip("\n")
            continue
        msg[key.strip().lower()] = value[1:] if value.startswith(" ") else value
    return msg


def build_action(action: str, fields: Iterable[tuple[str, str]]) -> bytes:
    """Encode an AMI action; raises ValueError when a value holds a line break."""
    lines = [f"Action: {action}"]
    for key, value in fields:
        if not _SAFE_VALUE.match(value) or not _SAFE_VALUE.match(key):
            raise ValueError(f"AMI field {key!r} contains a line break")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def login_action(username: str, secret: str, action_id: str, events: str = "call,agent") -> bytes:
    """The ``Login`` action (event classes ``call`` and ``agent`` by default)."""
    return build_action(
        "Login",
        [("ActionID", action_id), ("Username", username), ("Secret", secret), ("Events", events)],
    )


def originate_action(
    *,
    action_id: str,
    channel: str,
    exten: str,
    context: str,
    caller_id: str,
    timeout_ms: int,
    channel_id: str,
) -> bytes:
    """The ``Originate`` action used for click-to-dial."""
    return build_action(
        "Originate",
        [
            ("ActionID", action_id),
            ("Channel", channel),
            ("Exten", exten),
            ("Context", context),
            ("Priority", "1"),
            ("CallerID", caller_id),
            ("Timeout", str(timeout_ms)),
            ("ChannelId", channel_id),
            ("Async", "true"),
        ],
    )


def extension_of(channel: str) -> str:
    """Extension of a channel or interface name (``PJSIP/201-0000002a`` → ``201``)."""
    m = _CHANNEL.match(channel.strip())
    if m is None:
        return ""
    res = m.group("res")
    if "@" in res:
        res = res.split("@", 1)[0]
    return res.split("/", 1)[0]


@dataclass(slots=True)
class _Call:
    linkedid: str
    caller_num: str = ""
    caller_name: str = ""
    context: str = ""
    caller_known: bool = False
    outbound_extension: str | None = None
    outbound: bool = False
    announced: bool = False
    answered: bool = False
    ended: bool = False
    rang: set[str] = field(default_factory=set)


class AmiCallTracker:
    """Pure state machine: AMI messages → call events."""

    max_calls = 10000

    def __init__(
        self,
        source: str,
        line: str,
        *,
        inbound_contexts: Iterable[str] = (),
        clock: Clock = utcnow,
    ) -> None:
        self.source = source
        self.line = line
        self.inbound_contexts = frozenset(inbound_contexts)
        self._clock = clock
        self.calls: dict[str, _Call] = {}
        self._bridges: dict[str, dict[str, str]] = {}  # bridge id → {uniqueid: channel}
        self._originated: dict[str, str | None] = {}  # our ChannelId → extension

    def mark_originated(self, call_id: str, extension: str | None) -> None:
        """Remember a call we originated (its ChannelId/Linkedid is ``call_id``)."""
        self._originated[call_id] = extension
        while len(self._originated) > 1000:
            del self._originated[next(iter(self._originated))]
        call = self._call(call_id)
        call.outbound = True
        call.outbound_extension = extension
        call.announced = True

    def handle(self, msg: AmiMessage) -> list[CallEvent]:
        """Return the call events an AMI message implies."""
        kind = msg.get("event", "")
        handler = _HANDLERS.get(kind.lower())
        return [] if handler is None else handler(self, msg)

    # -- helpers --------------------------------------------------------------------------

    def _call(self, linkedid: str) -> _Call:
        call = self.calls.get(linkedid)
        if call is None:
            call = _Call(linkedid)
            if linkedid in self._originated:
                call.outbound = True
                call.outbound_extension = self._originated[linkedid]
                call.announced = True
            self.calls[linkedid] = call
            while len(self.calls) > self.max_calls:
                del self.calls[next(iter(self.calls))]
        return call

    def _learn_caller(self, call: _Call, msg: AmiMessage) -> None:
        """Take caller fields from the snapshot of the calling channel in ``msg``.

        The inbound leg (Uniqueid == Linkedid) is authoritative; any other calling channel
        (e.g. ``Local/…;2`` in a queue, when we connected mid-call) is a fallback.
        """
        if call.caller_known:
            return
        uniqueid = msg.get("uniqueid", "")
        if uniqueid and uniqueid == call.linkedid:
            call.caller_num = msg.get("calleridnum", "")
            call.caller_name = msg.get("calleridname", "")
            call.context = msg.get("context", "")
            call.caller_known = True
        elif not call.caller_num:
            call.caller_num = msg.get("calleridnum", "")
            call.caller_name = msg.get("calleridname", "")

    def _inbound(self, call: _Call) -> bool:
        if call.outbound:
            return False
        if self.inbound_contexts:
            return call.context in self.inbound_contexts
        caller = normalise_caller(_caller_raw(call.caller_num))
        return bool(caller.number_e164 or caller.withheld)

    def _base(self, call: _Call) -> dict[str, object]:
        return {"source": self.source, "call_id": call.linkedid, "line": self.line}

    def _ringing(self, call: _Call, extension: str, out: list[CallEvent]) -> None:
        if not extension or extension in call.rang or call.ended or call.answered:
            return
        if not self._inbound(call):
            return
        call.rang.add(extension)
        call.announced = True
        raw = _caller_raw(call.caller_num)
        caller = normalise_caller(raw)
        name = clean_name(call.caller_name)
        out.append(
            CallRinging(
                source=self.source,
                call_id=call.linkedid,
                line=self.line,
                at=self._clock(),
                extension=extension,
                caller_raw=raw,
                number=caller.number_e164,
                withheld=caller.withheld,
                caller_name="" if caller.withheld else name,
            )
        )

    def _answered(self, call: _Call, extension: str | None, out: list[CallEvent]) -> None:
        if not call.announced or call.answered or call.ended:
            return
        call.answered = True
        if call.outbound:
            extension = call.outbound_extension
        out.append(
            CallAnswered(
                source=self.source,
                call_id=call.linkedid,
                line=self.line,
                at=self._clock(),
                extension=extension or None,
            )
        )

    def _ended(self, call: _Call, reason: str, out: list[CallEvent]) -> None:
        if call.announced and not call.ended:
            out.append(
                CallEnded(
                    source=self.source,
                    call_id=call.linkedid,
                    line=self.line,
                    at=self._clock(),
                    answered=call.answered,
                    reason=reason,
                )
            )
        call.ended = True
        self.calls.pop(call.linkedid, None)
        self._originated.pop(call.linkedid, None)

    # -- events ---------------------------------------------------------------------------

    def _newchannel(self, msg: AmiMessage) -> list[CallEvent]:
        linkedid = msg.get("linkedid", "")
        if linkedid and msg.get("uniqueid") == linkedid:
            self._learn_caller(self._call(linkedid), msg)
        return []

    def _dialbegin(self, msg: AmiMessage) -> list[CallEvent]:
        out: list[CallEvent] = []
        linkedid = msg.get("linkedid") or msg.get("destlinkedid", "")
        if not linkedid:
            return out
        call = self._call(linkedid)
        self._learn_caller(call, msg)
        ext = extension_of(msg.get("destchannel", "")) or msg.get("dialstring", "")
        self._ringing(call, ext, out)
        return out

    def _dialend(self, msg: AmiMessage) -> list[CallEvent]:
        out: list[CallEvent] = []
        if msg.get("dialstatus", "").upper() != "ANSWER":
            return out
        call = self.calls.get(msg.get("linkedid") or msg.get("destlinkedid", ""))
        if call is not None:
            self._answered(call, extension_of(msg.get("destchannel", "")), out)
        return out

    def _agentcalled(self, msg: AmiMessage) -> list[CallEvent]:
        out: list[CallEvent] = []
        linkedid = msg.get("linkedid") or msg.get("destlinkedid", "")
        if not linkedid:
            return out
        call = self._call(linkedid)
        self._learn_caller(call, msg)
        ext = extension_of(msg.get("interface", "")) or extension_of(msg.get("destchannel", ""))
        self._ringing(call, ext, out)
        return out

    def _agentconnect(self, msg: AmiMessage) -> list[CallEvent]:
        out: list[CallEvent] = []
        call = self.calls.get(msg.get("linkedid") or msg.get("destlinkedid", ""))
        if call is not None:
            ext = extension_of(msg.get("interface", "")) or extension_of(msg.get("destchannel", ""))
            self._answered(call, ext, out)
        return out

    def _bridgeenter(self, msg: AmiMessage) -> list[CallEvent]:
        out: list[CallEvent] = []
        bridge = msg.get("bridgeuniqueid", "")
        uniqueid = msg.get("uniqueid", "")
        if not bridge or not uniqueid:
            return out
        members = self._bridges.setdefault(bridge, {})
        members[uniqueid] = msg.get("channel", "")
        call = self.calls.get(msg.get("linkedid", ""))
        if call is None or call.answered or call.linkedid not in members:
            return out
        others = [ch for uid, ch in members.items() if uid != call.linkedid]
        if others:
            self._answered(call, extension_of(others[0]), out)
        return out

    def _bridgeleave(self, msg: AmiMessage) -> list[CallEvent]:
        members = self._bridges.get(msg.get("bridgeuniqueid", ""))
        if members is not None:
            members.pop(msg.get("uniqueid", ""), None)
            if not members:
                self._bridges.pop(msg.get("bridgeuniqueid", ""), None)
        return []

    def _bridgedestroy(self, msg: AmiMessage) -> list[CallEvent]:
        self._bridges.pop(msg.get("bridgeuniqueid", ""), None)
        return []

    def _hangup(self, msg: AmiMessage) -> list[CallEvent]:
        out: list[CallEvent] = []
        linkedid = msg.get("linkedid", "")
        if not linkedid or msg.get("uniqueid") != linkedid:
            return out
        call = self.calls.get(linkedid)
        if call is not None:
            self._ended(call, "hangup", out)
        return out

    def _originateresponse(self, msg: AmiMessage) -> list[CallEvent]:
        out: list[CallEvent] = []
        call_id = msg.get("actionid", "")
        if msg.get("response", "").lower() != "failure" or call_id not in self._originated:
            return out
        call = self.calls.get(call_id)
        if call is not None:
            self._ended(call, "originate_failed", out)
        return out


_HANDLERS = {
    "newchannel": AmiCallTracker._newchannel,
    "dialbegin": AmiCallTracker._dialbegin,
    "dialend": AmiCallTracker._dialend,
    "agentcalled": AmiCallTracker._agentcalled,
    "agentconnect": AmiCallTracker._agentconnect,
    "bridgeenter": AmiCallTracker._bridgeenter,
    "bridgeleave": AmiCallTracker._bridgeleave,
    "bridgedestroy": AmiCallTracker._bridgedestroy,
    "hangup": AmiCallTracker._hangup,
    "originateresponse": AmiCallTracker._originateresponse,
}


def _caller_raw(num: str) -> str:
    return "" if num.strip().lower() in _UNKNOWN else num.strip()


class AmiSource(Source):
    """Asterisk AMI client (``kind = "ami"``): events in, Originate out."""

    kind = "ami"
    can_dial = True
    connect_timeout_s = 10.0
    login_timeout_s = 10.0
    action_timeout_s = 10.0
    ping_interval_s = 20.0

    def __init__(self, config: AmiSourceConfig) -> None:
        super().__init__(config)
        self.cfg = config
        self._writer: asyncio.StreamWriter | None = None
        self._tracker: AmiCallTracker | None = None
        self._pending: dict[str, tuple[asyncio.Future[AmiMessage], CallEvent | None]] = {}
        self._ids = itertools.count(1)

    def _action_id(self) -> str:
        return f"yebisu-{next(self._ids)}"

    async def run(self, emit: Emit) -> None:
        """Connect, log in and emit call events until the connection drops."""
        cfg = self.cfg
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(cfg.host, cfg.port), self.connect_timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"cannot connect to {cfg.host}:{cfg.port}: {exc}") from exc
        framer = AmiFramer()
        tracker = AmiCallTracker(self.name, self.line, inbound_contexts=cfg.inbound_contexts)
        pinger: asyncio.Task[None] | None = None
        try:
            messages, buffer = await self._login(reader, writer, framer)
            self._writer, self._tracker = writer, tracker
            self.mark_up()
            pinger = asyncio.create_task(self._ping(writer))
            while True:
                more, buffer = framer.feed(buffer)
                messages += more
                for msg in messages:
                    if "response" in msg and "event" not in msg:
                        await self._response(msg, emit)
                        continue
                    for event in tracker.handle(msg):
                        await emit(event)
                messages = []
                try:
                    data = await asyncio.wait_for(reader.read(65536), self.ping_interval_s * 3)
                except TimeoutError:
                    raise ConnectionError(f"{self.name}: AMI silent, reconnecting") from None
                if not data:
                    raise ConnectionError(f"{self.name}: AMI connection closed")
                buffer += data
        finally:
            if pinger is not None:
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pinger
            self._writer = self._tracker = None
            for fut, _ in self._pending.values():
                if not fut.done():
                    fut.set_exception(DialError(f"{self.name}: AMI connection lost"))
                    fut.exception()  # mark retrieved
            self._pending.clear()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _response(self, msg: AmiMessage, emit: Emit) -> None:
        """Resolve the action waiting for ``msg``; a queued Originate is announced here, in
        stream order, before the events of the call it starts."""
        pending = self._pending.pop(msg.get("actionid", ""), None)
        if pending is None:
            return
        fut, dialing = pending
        if dialing is not None and msg.get("response", "").lower() == "success":
            await emit(dialing)
        if not fut.done():
            fut.set_result(msg)

    async def _login(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, framer: AmiFramer
    ) -> tuple[list[AmiMessage], bytes]:
        """Send Login and wait for its response; return what was read after it."""
        action_id = self._action_id()
        writer.write(login_action(self.cfg.username, self.cfg.secret, action_id))
        await writer.drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.login_timeout_s
        buffer = b""
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ConnectionError(f"{self.name}: no answer to Login")
            try:
                data = await asyncio.wait_for(reader.read(65536), remaining)
            except TimeoutError:
                continue
            if not data:
                raise ConnectionError(f"{self.name}: connection closed during login")
            buffer += data
            messages, buffer = framer.feed(buffer)
            for i, msg in enumerate(messages):
                if msg.get("actionid") != action_id:
                    continue
                if msg.get("response", "").lower() != "success":
                    raise SourceError(f"{self.name}: login refused: {msg.get('message', '')}")
                log.info("%s: logged in (%s)", self.name, framer.banner or "no banner")
                return messages[i + 1 :], buffer

    async def _ping(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await asyncio.sleep(self.ping_interval_s)
            writer.write(build_action("Ping", [("ActionID", self._action_id())]))
            await writer.drain()

    async def dial(self, extension: str | None, number: str, *, call_id: str | None = None) -> str:
        """Originate a call: ring ``extension``, then dial ``number`` from it."""
        writer, tracker = self._writer, self._tracker
        if writer is None or tracker is None:
            raise DialError(f"{self.name}: AMI not connected")
        if not extension or not _EXTENSION.match(extension):
            raise DialError(f"{self.name}: bad extension {extension!r}")
        digits = dialable(number)
        if not digits or not _EXTENSION.match(digits):
            raise DialError(f"{self.name}: nothing to dial in {number!r}")
        call_id = call_id or new_call_id("yebisu")
        try:
            action = originate_action(
                action_id=call_id,
                channel=self.cfg.originate_channel.format(extension=extension),
                exten=digits,
                context=self.cfg.originate_context,
                caller_id=f'"{digits}" <{digits}>',
                timeout_ms=int(self.cfg.originate_timeout_s * 1000),
                channel_id=call_id,
            )
        except (ValueError, KeyError, IndexError) as exc:
            raise DialError(f"{self.name}: cannot build Originate: {exc}") from exc
        fut: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        dialing = OutboundDialing(
            source=self.name, call_id=call_id, line=self.line, extension=extension, number=number
        )
        self._pending[call_id] = (fut, dialing)
        tracker.mark_originated(call_id, extension)
        writer.write(action)
        try:
            await writer.drain()
            response = await asyncio.wait_for(fut, self.action_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise DialError(f"{self.name}: no answer to Originate: {exc}") from exc
        finally:
            self._pending.pop(call_id, None)
        if response.get("response", "").lower() != "success":
            tracker.calls.pop(call_id, None)
            raise DialError(f"{self.name}: Originate refused: {response.get('message', '')}")
        return call_id
