"""Building sources from configuration and running a bridge."""

from __future__ import annotations

import asyncio

import pytest

from cti_bridge.bus import MemoryBus, RedisBus
from cti_bridge.config import (
    AmiSourceConfig,
    ModemSourceConfig,
    NdSourceConfig,
    SimulatorSourceConfig,
    SipSourceConfig,
    WebhookSourceConfig,
    build_source,
)
from cti_bridge.events import CallEnded, CallEvent, CallRinging, OutboundDialing
from cti_bridge.runner import Bridge, build_sources, main, run_bridge
from cti_bridge.source import DialError
from cti_bridge.sources.ami import AmiSource
from cti_bridge.sources.modem import ModemSource
from cti_bridge.sources.nd import NdSource
from cti_bridge.sources.simulator import SimulatorSource
from cti_bridge.sources.sip import SipSource
from cti_bridge.sources.webhook import WebhookSource

from .conftest import until


def test_build_sources_for_every_kind_and_skip_disabled() -> None:
    configs = [
        ModemSourceConfig(name="modem"),
        NdSourceConfig(name="nd"),
        SipSourceConfig(name="sip"),
        AmiSourceConfig(name="ami"),
        WebhookSourceConfig(name="hook", secret="x"),
        SimulatorSourceConfig(name="sim"),
        SimulatorSourceConfig(name="off", enabled=False),
    ]
    sources = build_sources(configs)
    assert [type(s) for s in sources] == [
        ModemSource,
        NdSource,
        SipSource,
        AmiSource,
        WebhookSource,
        SimulatorSource,
    ]
    assert [s.name for s in sources] == ["modem", "nd", "sip", "ami", "hook", "sim"]
    assert [s.can_dial for s in sources] == [True, False, False, True, False, True]


def test_config_validation_of_added_keys() -> None:
    from cti_bridge.config import ConfigError

    with pytest.raises(ConfigError, match="final_response"):
        build_source({"kind": "sip", "final_response": 200}, 0)
    with pytest.raises(ConfigError, match="final_after_s"):
        build_source({"kind": "sip", "final_after_s": -1}, 0)
    with pytest.raises(ConfigError, match="ring_end_s"):
        build_source({"kind": "modem", "ring_end_s": 0}, 0)
    ami = build_source({"kind": "ami", "inbound_contexts": "from-trunk, from-pstn"}, 0)
    assert isinstance(ami, AmiSourceConfig) and ami.inbound_contexts == ["from-trunk", "from-pstn"]


async def test_bridge_with_simulator_and_memory_bus() -> None:
    bus = MemoryBus()
    bridge = Bridge(
        build_sources(
            [
                SimulatorSourceConfig(name="sim", line="main"),
                WebhookSourceConfig(name="hook", secret="s"),
            ]
        ),
        bus,
    )
    await bridge.start()
    try:
        sim = bridge.simulator()
        assert sim is not None and bridge.simulator("nope") is None
        assert bridge.webhook("hook") is not None and bridge.webhook("sim") is None
        await until(lambda: all(s.state == "up" for s in bridge.statuses()))
        call_id = await sim.ring("0312345678", extension="201")
        event = await asyncio.wait_for(bus.queue.get(), 5)
        assert isinstance(event, CallRinging) and event.call_id == call_id
        dial_id = await bridge.dial("201", "0312345678")
        dialing = await asyncio.wait_for(bus.queue.get(), 5)
        assert isinstance(dialing, OutboundDialing) and dialing.call_id == dial_id
        with pytest.raises(DialError, match="no source can dial"):
            await bridge.dial("201", "0312345678", source="hook")
        with pytest.raises(DialError, match="no source can dial"):
            await bridge.dial("201", "0312345678", line="osaka")
    finally:
        await bridge.stop()
    assert {s.state for s in bridge.statuses()} == {"stopped"}


async def test_run_bridge_until_cancelled() -> None:
    bus = MemoryBus()
    task = asyncio.create_task(run_bridge([SimulatorSourceConfig(name="sim")], bus))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait({task})
    assert task.cancelled()


@pytest.mark.redis
async def test_standalone_main_publishes_to_redis_and_dials_on_request(
    cti_redis_url: str, redis_prefix: str
) -> None:
    task = asyncio.create_task(
        main([SimulatorSourceConfig(name="sim", line="main")], cti_redis_url, prefix=redis_prefix)
    )
    app = RedisBus(cti_redis_url, prefix=redis_prefix, consumer="app", block_ms=100)
    got: list[CallEvent] = []

    async def handle(event: CallEvent) -> None:
        got.append(event)

    consumer = asyncio.create_task(app.consume(handle))
    try:

        async def request() -> str:
            while True:
                try:
                    return await app.request_dial("201", "0312345678", call_id="d-42")
                except DialError:
                    await asyncio.sleep(0.02)  # the bridge is still starting

        await asyncio.wait_for(request(), 5)
        await until(lambda: len(got) >= 1)
        assert isinstance(got[0], OutboundDialing) and got[0].call_id == "d-42"
        await app.request_dial("201", "0312345678", call_id="d-43", source="nope")
        await until(lambda: len(got) >= 2)
        assert isinstance(got[1], CallEnded) and got[1].reason == "dial_failed"
        assert got[1].call_id == "d-43"
    finally:
        for t in (consumer, task):
            t.cancel()
        await asyncio.wait({consumer, task})
        await app.close()
