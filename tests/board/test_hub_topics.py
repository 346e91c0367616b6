"""Hub topics: a board published in one process reaches the subscribers of another (Redis),
and nobody renders a board nobody watches."""

from __future__ import annotations

import asyncio
import os
import uuid

from app.hub import Hub, RedisHub
from tests.conftest import need


class Conn:
    def __init__(self) -> None:
        self.got: asyncio.Queue[str] = asyncio.Queue()

    async def send_text(self, data: str) -> None:
        self.got.put_nowait(data)


async def test_local_topics() -> None:
    hub = Hub()
    conn = Conn()
    assert not await hub.has_subscribers("board")
    hub.subscribe("board", conn)
    assert await hub.has_subscribers("board")
    await hub.publish("board", "<div id='board-live'></div>")
    assert conn.got.get_nowait() == "<div id='board-live'></div>"
    hub.unsubscribe("board", conn)
    assert not await hub.has_subscribers("board")


async def test_topics_across_processes() -> None:
    redis_url = os.environ.get("YEBISU_TEST_REDIS_URL", "")
    need(bool(redis_url), "Redis (YEBISU_TEST_REDIS_URL)")
    prefix = f"yt{uuid.uuid4().hex[:8]}"
    a, b = RedisHub(redis_url, prefix), RedisHub(redis_url, prefix)
    await a.start()
    await b.start()
    try:
        conn = Conn()
        assert not await a.has_subscribers("board")
        b.subscribe("board", conn)
        for _ in range(100):
            if await a.has_subscribers("board"):
                break
            await asyncio.sleep(0.01)
        assert await a.has_subscribers("board")
        await a.publish("board", "<p>ボード</p>")
        assert await asyncio.wait_for(conn.got.get(), 5) == "<p>ボード</p>"
        await a.deliver([1], "<p>pop</p>")  # staff fragments do not reach topic subscribers
        await asyncio.sleep(0.1)
        assert conn.got.empty()
    finally:
        await a.stop()
        await b.stop()
