"""Websocket hub: pushes htmx fragments to the tabs of given staff members, and to the tabs
subscribed to a topic (the supervisors' live board, today's responses).

Without Redis every connection lives in this process. With Redis, a fragment is published once
on ``{prefix}:ws`` and every app process delivers it to its own connections, so the process that
handled a call event need not hold the operator's websocket.

:meth:`Hub.close_staff` closes a staff member's websockets (sessions ended: log-out,
retirement, role or password change); with Redis a control message on the same channel makes
every process close its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol

from redis.asyncio import Redis

log = logging.getLogger("yebisu.hub")

# A process announces the topics its connections subscribe to for this long (renewed while
# they stay), so a process publishing a board knows whether anyone anywhere watches it.
TOPIC_TTL_S = 30


# The close code of a socket whose session ended: the page goes to the log-in screen.
CLOSE_SESSION_ENDED = 4401


class Connection(Protocol):
    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class Hub:
    """In-process hub."""

    def __init__(self) -> None:
        self._conns: dict[int, set[Connection]] = defaultdict(set)
        self._topics: dict[str, set[Connection]] = defaultdict(set)
        self._session_of: dict[Connection, str] = {}  # connection -> its session's id hash
        # Topic sockets (board, 本日の対応) by staff member: closed with their sessions, but
        # never sent that member's own fragments (pops).
        self._watching: dict[int, set[Connection]] = defaultdict(set)

    def subscribe(self, topic: str, conn: Connection) -> None:
        """Let this connection receive what is published on ``topic``."""
        self._topics[topic].add(conn)

    def unsubscribe(self, topic: str, conn: Connection) -> None:
        conns = self._topics.get(topic)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._topics[topic]

    async def has_subscribers(self, topic: str) -> bool:
        """Whether publishing on ``topic`` would reach anyone (so nobody renders for nobody)."""
        return bool(self._topics.get(topic))

    async def publish(self, topic: str, html: str) -> None:
        """Send ``html`` to every connection subscribed to ``topic``."""
        await self.publish_local(topic, html)

    async def publish_local(self, topic: str, html: str) -> int:
        conns = list(self._topics.get(topic, ()))
        for conn in conns:
            try:
                await conn.send_text(html)
            except Exception:  # a closing socket; its handler unsubscribes it
                log.debug("send to topic %s failed", topic, exc_info=True)
        return len(conns)

    def register(self, staff_id: int, conn: Connection, session: str = "") -> None:
        """Deliver this staff member's fragments to ``conn`` (of the session ``session``)."""
        self._conns[staff_id].add(conn)
        if session:
            self._session_of[conn] = session

    def unregister(self, staff_id: int, conn: Connection) -> None:
        self._session_of.pop(conn, None)
        for registry in (self._conns, self._watching):
            conns = registry.get(staff_id)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del registry[staff_id]

    def own(self, staff_id: int, conn: Connection, session: str = "") -> None:
        """A topic socket of this staff member: it closes when their sessions end
        (:meth:`close_staff`) but gets none of their fragments. Undo with :meth:`unregister`."""
        self._watching[staff_id].add(conn)
        if session:
            self._session_of[conn] = session

    async def deliver(self, staff_ids: Iterable[int], html: str) -> None:
        """Send ``html`` to every open tab of these staff members."""
        await self.deliver_local(staff_ids, html)

    async def deliver_local(self, staff_ids: Iterable[int], html: str) -> None:
        for sid in set(staff_ids):
            for conn in list(self._conns.get(sid, ())):
                try:
                    await conn.send_text(html)
                except Exception:  # a closing socket; its handler unregisters it
                    log.debug("send to staff %s failed", sid, exc_info=True)

    async def close_staff(
        self, staff_id: int, *, keep_session: str = "", code: int = CLOSE_SESSION_ENDED
    ) -> None:
        """Close every websocket of this staff member (but those of the session
        ``keep_session``), in every process."""
        await self.close_local(staff_id, keep_session=keep_session, code=code)

    async def close_local(
        self, staff_id: int, *, keep_session: str = "", code: int = CLOSE_SESSION_ENDED
    ) -> int:
        closing = [
            conn
            for conn in [*self._conns.get(staff_id, ()), *self._watching.get(staff_id, ())]
            if not keep_session or self._session_of.get(conn) != keep_session
        ]
        for conn in closing:
            try:
                await conn.close(code=code, reason="session ended")
            except Exception:  # already closing; its handler unregisters it
                log.debug("close of a socket of staff %s failed", staff_id, exc_info=True)
        if closing:
            log.info("closed %d websocket(s) of staff %s", len(closing), staff_id)
        return len(closing)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisHub(Hub):
    """Hub shared by several app processes through Redis pub/sub."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.channel = f"{prefix}:ws"
        self.origin = uuid.uuid4().hex
        self._redis: Redis = Redis.from_url(url)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._beat: asyncio.Task[None] | None = None
        self._announcing: set[asyncio.Task[None]] = set()
        # Topic frames from other processes are fanned out by their own task, in order, so
        # 50 boards (or one slow socket) never hold up the next pop this listener carries.
        self._topic_frames: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._fan_out: asyncio.Task[None] | None = None

    async def deliver(self, staff_ids: Iterable[int], html: str) -> None:
        """This process's tabs at once; the other processes' through Redis."""
        to = sorted(set(staff_ids))
        await self.deliver_local(to, html)
        payload = json.dumps({"from": self.origin, "to": to, "html": html}, ensure_ascii=False)
        await self._redis.publish(self.channel, payload)

    async def close_staff(
        self, staff_id: int, *, keep_session: str = "", code: int = CLOSE_SESSION_ENDED
    ) -> None:
        """This process's sockets at once; the other processes' through Redis."""
        await self.close_local(staff_id, keep_session=keep_session, code=code)
        payload = json.dumps(
            {"from": self.origin, "close": staff_id, "keep": keep_session, "code": code}
        )
        await self._redis.publish(self.channel, payload)

    def subscribe(self, topic: str, conn: Connection) -> None:
        super().subscribe(topic, conn)
        task = asyncio.get_running_loop().create_task(self._announce([topic]))
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    def _topic_key(self, topic: str) -> str:
        return f"{self.prefix}:topic:{topic}"

    async def _announce(self, topics: Iterable[str]) -> None:
        """Tell the other processes this one has subscribers of these topics (for a while)."""
        try:
            for topic in topics:
                await self._redis.set(self._topic_key(topic), self.origin, ex=TOPIC_TTL_S)
        except Exception:
            log.warning("hub: could not announce topics", exc_info=True)

    async def has_subscribers(self, topic: str) -> bool:
        """Here, or in any process that announced the topic within ``TOPIC_TTL_S``."""
        if self._topics.get(topic):
            return True
        try:
            return bool(await self._redis.exists(self._topic_key(topic)))
        except Exception:
            return True

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(TOPIC_TTL_S / 3)
            await self._announce([t for t, conns in self._topics.items() if conns])

    async def publish(self, topic: str, html: str) -> None:
        """This process's subscribers at once; the other processes' through Redis."""
        await self.publish_local(topic, html)
        payload = json.dumps(
            {"from": self.origin, "topic": topic, "html": html}, ensure_ascii=False
        )
        await self._redis.publish(self.channel, payload)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="hub-listener")
        await asyncio.wait_for(self._ready.wait(), timeout=10)
        self._beat = asyncio.create_task(self._heartbeat(), name="hub-topics")
        self._fan_out = asyncio.create_task(self._send_topic_frames(), name="hub-topic-frames")

    async def _send_topic_frames(self) -> None:
        while True:
            topic, html = await self._topic_frames.get()
            await self.publish_local(topic, html)

    async def _listen(self) -> None:
        backoff = 0.2
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self.channel)
                self._ready.set()
                backoff = 0.2
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data: dict[str, Any] = json.loads(message["data"])
                    if data.get("from") == self.origin:
                        continue
                    if "close" in data:
                        await self.close_local(
                            int(data["close"]),
                            keep_session=str(data.get("keep", "")),
                            code=int(data.get("code", CLOSE_SESSION_ENDED)),
                        )
                    elif "topic" in data:
                        self._topic_frames.put_nowait((data["topic"], data["html"]))
                    else:
                        await self.deliver_local(data["to"], data["html"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("hub: Redis subscription lost; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def stop(self) -> None:
        for task in (self._task, self._beat, self._fan_out, *self._announcing):
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._redis.aclose()
