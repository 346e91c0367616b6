"""How call events leave the bridge and reach the app.

* :class:`MemoryBus`: an asyncio queue, when the bridge runs inside the app process.
* :class:`RedisBus`: a Redis **stream** ``{prefix}:cti:events`` (``XADD … MAXLEN ~ 10000``,
  one field ``e`` holding the event JSON). Events stay in the stream while the app is away;
  app processes read it through the consumer group ``app`` (``XREADGROUP``), so with several
  processes each event is handled by exactly one of them, and ``XACK`` it after the handler.
  Entries left unacknowledged by a dead consumer are taken over (``XAUTOCLAIM``) after
  ``claim_idle_ms``. Click-to-dial requests from the app to a standalone bridge travel the
  other way over the pub/sub channel ``{prefix}:cti:commands`` (never buffered: a dial request
  must not run minutes later).

Consumers should drop stale ringing events (:func:`~cti_bridge.events.is_stale`); ``consume``
does it for them when given ``drop_stale_after_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from cti_bridge.events import CallEvent, event_from_json, is_stale
from cti_bridge.source import DialError

__all__ = ["Bus", "Handler", "MemoryBus", "RedisBus", "is_stale", "make_bus"]

log = logging.getLogger(__name__)

Handler = Callable[[CallEvent], Awaitable[None]]


class Bus(ABC):
    """Publishing side for the bridge, consuming side for the app."""

    @abstractmethod
    async def publish(self, event: CallEvent) -> None:
        """Hand one event to the app (never blocks for long)."""

    @abstractmethod
    async def consume(self, handler: Handler, *, drop_stale_after_s: float | None = None) -> None:
        """Call ``handler`` for every event, in order, until cancelled.

        With ``drop_stale_after_s``, ringing events older than that are skipped (logged).
        A handler exception is logged and the event counts as handled (no poison loops).
        """

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""


async def _call_handler(
    handler: Handler, event: CallEvent, drop_stale_after_s: float | None
) -> None:
    if drop_stale_after_s is not None and is_stale(event, drop_stale_after_s):
        log.info("dropped stale %s %s/%s", event.type, event.source, event.call_id)
        return
    try:
        await handler(event)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("event handler failed on %s", event)


class MemoryBus(Bus):
    """In-process bus: a bounded asyncio queue (oldest event dropped when full)."""

    def __init__(self, maxsize: int = 10000) -> None:
        self.queue: asyncio.Queue[CallEvent] = asyncio.Queue(maxsize)

    async def publish(self, event: CallEvent) -> None:
        """Queue the event."""
        if self.queue.full():
            dropped = self.queue.get_nowait()
            log.warning("memory bus full, dropped %s %s", dropped.type, dropped.call_id)
        self.queue.put_nowait(event)

    async def consume(self, handler: Handler, *, drop_stale_after_s: float | None = None) -> None:
        """Handle queued events until cancelled."""
        while True:
            event = await self.queue.get()
            await _call_handler(handler, event, drop_stale_after_s)


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class RedisBus(Bus):
    """Redis stream bus (see the module doc)."""

    field = "e"

    def __init__(
        self,
        url: str = "",
        *,
        client: Redis | None = None,
        prefix: str = "yebisu",
        group: str = "app",
        consumer: str | None = None,
        maxlen: int = 10000,
        block_ms: int = 1000,
        batch: int = 100,
        claim_idle_ms: int = 30000,
    ) -> None:
        if client is None and not url:
            raise ValueError("RedisBus needs a url or a client")
        self.redis: Redis = client if client is not None else Redis.from_url(url)
        self._own_client = client is None
        self.prefix = prefix
        self.stream = f"{prefix}:cti:events"
        self.commands_channel = f"{prefix}:cti:commands"
        self.group = group
        self.consumer = consumer or _consumer_name()
        self.maxlen = maxlen
        self.block_ms = block_ms
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        self._group_ready = False

    async def ensure_group(self) -> None:
        """Create the stream and consumer group if missing (at the stream's current end).

        The publisher calls it before its first event too, so events published before any app
        process ever started are still delivered.
        """
        if self._group_ready:
            return
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def publish(self, event: CallEvent) -> None:
        """``XADD {prefix}:cti:events MAXLEN ~ maxlen * e <json>``."""
        await self.ensure_group()
        await self.redis.xadd(
            self.stream, {self.field: event.to_json()}, maxlen=self.maxlen, approximate=True
        )

    async def consume(self, handler: Handler, *, drop_stale_after_s: float | None = None) -> None:
        """Read through the consumer group until cancelled; XACK each entry after ``handler``."""
        await self.ensure_group()
        loop = asyncio.get_running_loop()
        next_claim = 0.0
        while True:
            entries: list[tuple[bytes, dict[bytes, bytes]]] = []
            if loop.time() >= next_claim:
                next_claim = loop.time() + self.claim_idle_ms / 2000
                entries = await self._claim()
            if not entries:
                reply = await self.redis.xreadgroup(
                    self.group,
                    self.consumer,
                    {self.stream: ">"},
                    count=self.batch,
                    block=self.block_ms,
                )
                for _stream, items in reply or []:
                    entries.extend(items)
            for entry_id, fields in entries:
                await self._handle(entry_id, fields, handler, drop_stale_after_s)

    async def _claim(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        try:
            reply = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, "0-0", count=self.batch
            )
        except ResponseError as exc:  # Redis < 6.2
            log.debug("XAUTOCLAIM unavailable: %s", exc)
            return []
        items = reply[1] if len(reply) > 1 else []
        return [(i, f) for i, f in items if f]

    async def _handle(
        self,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        handler: Handler,
        drop_stale_after_s: float | None,
    ) -> None:
        raw = fields.get(self.field.encode()) or fields.get(self.field)  # type: ignore[call-overload]
        try:
            event = event_from_json(raw)
        except (ValueError, TypeError):
            log.error("undecodable entry %r in %s: %r", entry_id, self.stream, raw)
        else:
            await _call_handler(handler, event, drop_stale_after_s)
        await self.redis.xack(self.stream, self.group, entry_id)

    # -- click-to-dial commands (app → standalone bridge) ---------------------------------

    async def request_dial(
        self,
        extension: str | None,
        number: str,
        *,
        source: str = "",
        line: str = "",
        call_id: str | None = None,
    ) -> str:
        """Ask a standalone bridge to dial; returns the call id the events will carry.

        Raises :class:`~cti_bridge.source.DialError` when no bridge is listening. The outcome
        arrives as :class:`~cti_bridge.events.OutboundDialing` or as
        ``CallEnded(reason="dial_failed")`` with this call id.
        """
        call_id = call_id or f"dial-{uuid.uuid4().hex[:16]}"
        command = {
            "op": "dial",
            "call_id": call_id,
            "extension": extension,
            "number": number,
            "source": source,
            "line": line,
        }
        receivers = await self.redis.publish(self.commands_channel, json.dumps(command))
        if not receivers:
            raise DialError("no CTI bridge is listening for commands")
        return call_id

    async def commands(self) -> AsyncIterator[dict[str, Any]]:
        """Yield command dicts published by :meth:`request_dial` (bridge side)."""
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.commands_channel)
        try:
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if msg is None or msg.get("type") != "message":
                    continue
                try:
                    data = json.loads(msg["data"])
                except ValueError:
                    log.error("bad command on %s: %r", self.commands_channel, msg["data"])
                    continue
                if isinstance(data, dict):
                    yield data
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe(self.commands_channel)
            await pubsub.aclose()

    async def close(self) -> None:
        """Close the Redis client when this bus created it."""
        if self._own_client:
            await self.redis.aclose()


def make_bus(redis_url: str = "", *, prefix: str = "yebisu") -> Bus:
    """A :class:`RedisBus` when ``redis_url`` is set, else a :class:`MemoryBus`."""
    return RedisBus(redis_url, prefix=prefix) if redis_url else MemoryBus()
