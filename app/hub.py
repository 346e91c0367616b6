"""Websocket hub: pushes htmx fragments to the tabs of given staff members.

Without Redis every connection lives in this process. With Redis, a fragment is published once
on ``{prefix}:ws`` and every app process delivers it to its own connections, so the process that
handled a call event need not hold the operator's websocket.
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


class Connection(Protocol):
    async def send_text(self, data: str) -> None: ...


class Hub:
    """In-process hub."""

    def __init__(self) -> None:
        self._conns: dict[int, set[Connection]] = defaultdict(set)

    def register(self, staff_id: int, conn: Connection) -> None:
        self._conns[staff_id].add(conn)

    def unregister(self, staff_id: int, conn: Connection) -> None:
        conns = self._conns.get(staff_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._conns[staff_id]

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

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisHub(Hub):
    """Hub shared by several app processes through Redis pub/sub."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self.channel = f"{prefix}:ws"
        self.origin = uuid.uuid4().hex
        self._redis: Redis = Redis.from_url(url)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def deliver(self, staff_ids: Iterable[int], html: str) -> None:
        """This process's tabs at once; the other processes' through Redis."""
        to = sorted(set(staff_ids))
        await self.deliver_local(to, html)
        payload = json.dumps({"from": self.origin, "to": to, "html": html}, ensure_ascii=False)
        await self._redis.publish(self.channel, payload)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="hub-listener")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

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
                    if data.get("from") != self.origin:
                        await self.deliver_local(data["to"], data["html"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("hub: Redis subscription lost; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()
