"""Buses: in-process queue and the Redis stream with a consumer group."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from cti_bridge.bus import MemoryBus, RedisBus, make_bus
from cti_bridge.events import CallAnswered, CallEnded, CallEvent, CallRinging, utcnow
from cti_bridge.source import DialError

from .conftest import until


def ringing(n: int, age_s: float = 0) -> CallRinging:
    return CallRinging(
        source="sim",
        call_id=f"c{n}",
        line="main",
        at=utcnow() - timedelta(seconds=age_s),
        number="+81312345678",
    )


async def test_memory_bus_in_order_with_stale_guard() -> None:
    bus = MemoryBus()
    got: list[CallEvent] = []

    async def handler(event: CallEvent) -> None:
        got.append(event)
        if event.call_id == "c2":
            raise RuntimeError("handler bug")  # logged, not fatal

    for event in (
        ringing(1),
        ringing(2),
        ringing(3, age_s=120),
        CallAnswered(source="s", call_id="c1", line="main"),
    ):
        await bus.publish(event)
    task = asyncio.create_task(bus.consume(handler, drop_stale_after_s=30))
    await until(lambda: len(got) == 3)
    assert [e.call_id for e in got] == ["c1", "c2", "c1"]
    task.cancel()
    await asyncio.wait({task})
    await bus.close()


async def test_memory_bus_drops_oldest_when_full() -> None:
    bus = MemoryBus(maxsize=2)
    for n in range(3):
        await bus.publish(ringing(n))
    assert [bus.queue.get_nowait().call_id for _ in range(2)] == ["c1", "c2"]


def test_make_bus() -> None:
    assert isinstance(make_bus(""), MemoryBus)
    with pytest.raises(ValueError):
        RedisBus("")


@pytest.mark.redis
async def test_redis_stream_round_trip_with_consumer_group(
    cti_redis_url: str, redis_prefix: str
) -> None:
    publisher = RedisBus(cti_redis_url, prefix=redis_prefix)
    app1 = RedisBus(cti_redis_url, prefix=redis_prefix, consumer="app1", block_ms=100)
    app2 = RedisBus(cti_redis_url, prefix=redis_prefix, consumer="app2", block_ms=100)
    handled: list[tuple[str, str]] = []

    def handler_for(name: str) -> Callable[[CallEvent], Awaitable[None]]:
        async def handle(event: CallEvent) -> None:
            handled.append((name, event.call_id))

        return handle

    tasks: list[asyncio.Task[None]] = []
    try:
        # Published before any app process runs: buffered in the stream, not lost.
        await publisher.publish(ringing(0))
        await publisher.publish(ringing(1, age_s=300))  # stale by the time it is read
        tasks = [
            asyncio.create_task(app1.consume(handler_for("app1"), drop_stale_after_s=60)),
            asyncio.create_task(app2.consume(handler_for("app2"), drop_stale_after_s=60)),
        ]
        for n in range(2, 12):
            await publisher.publish(ringing(n))
        await publisher.publish(CallEnded(source="sim", call_id="c2", line="main"))
        await until(lambda: len(handled) == 12, what="every event handled once")
        ids = [call_id for _, call_id in handled]
        assert sorted(ids) == sorted(["c0", *(f"c{n}" for n in range(2, 12)), "c2"])
        assert "c1" not in ids
        assert {name for name, _ in handled} <= {"app1", "app2"}
        client = Redis.from_url(cti_redis_url)
        try:
            stream = f"{redis_prefix}:cti:events"
            assert await client.xlen(stream) == 13
            pending = await client.xpending(stream, "app")
            assert pending["pending"] == 0  # everything acknowledged
        finally:
            await client.aclose()
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for bus in (publisher, app1, app2):
            await bus.close()


@pytest.mark.redis
async def test_redis_unacked_entries_of_a_dead_consumer_are_claimed(
    cti_redis_url: str, redis_prefix: str
) -> None:
    bus = RedisBus(cti_redis_url, prefix=redis_prefix, consumer="dead", claim_idle_ms=1)
    await bus.publish(ringing(7))
    # The dead consumer read the entry but never acknowledged it.
    await bus.redis.xreadgroup("app", "dead", {bus.stream: ">"}, count=10)
    survivor = RedisBus(
        cti_redis_url, prefix=redis_prefix, consumer="alive", claim_idle_ms=1, block_ms=100
    )
    got: list[CallEvent] = []

    async def handle(event: CallEvent) -> None:
        got.append(event)

    task = asyncio.create_task(survivor.consume(handle))
    try:
        await until(lambda: len(got) == 1)
        assert got[0].call_id == "c7"
    finally:
        task.cancel()
        await asyncio.wait({task})
        await bus.close()
        await survivor.close()


@pytest.mark.redis
async def test_redis_dial_commands(cti_redis_url: str, redis_prefix: str) -> None:
    app = RedisBus(cti_redis_url, prefix=redis_prefix)
    bridge = RedisBus(cti_redis_url, prefix=redis_prefix)
    try:
        with pytest.raises(DialError, match="no CTI bridge"):
            await app.request_dial("201", "0312345678")
        received: list[dict[str, object]] = []

        async def listen() -> None:
            async for cmd in bridge.commands():
                received.append(cmd)

        task = asyncio.create_task(listen())
        try:

            async def subscribed() -> None:
                while True:
                    try:
                        return await app.request_dial("201", "0312345678", call_id="d-1")
                    except DialError:
                        await asyncio.sleep(0.01)

            await asyncio.wait_for(subscribed(), 5)
            await until(lambda: len(received) == 1)
            assert received[0] == {
                "op": "dial",
                "call_id": "d-1",
                "extension": "201",
                "number": "0312345678",
                "source": "",
                "line": "",
            }
        finally:
            task.cancel()
            await asyncio.wait({task})
    finally:
        await app.close()
        await bridge.close()
