"""Builds sources from configuration and runs them, each under its own supervisor.

Embedded in the app::

    bus = MemoryBus()                       # or RedisBus(url, prefix=…)
    bridge = Bridge(build_sources(settings.cti.sources), bus)
    await bridge.start()                    # on startup
    ... bridge.simulator(), bridge.webhook(name), await bridge.dial(ext, number) ...
    await bridge.stop()                     # on shutdown

Standalone (``yebisu bridge``): ``asyncio.run(main(settings.cti.sources, settings.redis.url,
prefix=settings.redis.channel_prefix))`` publishes to Redis and executes dial requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable

from cti_bridge.bus import Bus, RedisBus
from cti_bridge.config import (
    AmiSourceConfig,
    ModemSourceConfig,
    NdSourceConfig,
    SimulatorSourceConfig,
    SipSourceConfig,
    SourceConfig,
    WebhookSourceConfig,
)
from cti_bridge.events import CallEnded
from cti_bridge.source import DialError, Source
from cti_bridge.sources.ami import AmiSource
from cti_bridge.sources.modem import ModemSource
from cti_bridge.sources.nd import NdSource
from cti_bridge.sources.simulator import SimulatorSource
from cti_bridge.sources.sip import SipSource
from cti_bridge.sources.webhook import WebhookSource
from cti_bridge.status import StatusPublisher
from cti_bridge.supervisor import SourceStatus, Supervisor

__all__ = ["Bridge", "build_source", "build_sources", "main", "run_bridge"]

log = logging.getLogger(__name__)


def build_source(config: SourceConfig) -> Source:
    """Return the source object for one configuration entry."""
    if isinstance(config, ModemSourceConfig):
        return ModemSource(config)
    if isinstance(config, NdSourceConfig):
        return NdSource(config)
    if isinstance(config, SipSourceConfig):
        return SipSource(config)
    if isinstance(config, AmiSourceConfig):
        return AmiSource(config)
    if isinstance(config, WebhookSourceConfig):
        return WebhookSource(config)
    if isinstance(config, SimulatorSourceConfig):
        return SimulatorSource(config)
    raise ValueError(f"unknown source kind {config.kind!r}")


def build_sources(configs: Iterable[SourceConfig]) -> list[Source]:
    """Source objects for every *enabled* configuration entry."""
    return [build_source(c) for c in configs if c.enabled]


class Bridge:
    """A set of supervised sources publishing to one bus."""

    def __init__(self, sources: Iterable[Source], bus: Bus) -> None:
        self.bus = bus
        self.sources: dict[str, Source] = {s.name: s for s in sources}
        self.supervisors: dict[str, Supervisor] = {
            name: Supervisor(src, bus.publish) for name, src in self.sources.items()
        }

    async def start(self) -> None:
        """Start every supervisor (returns at once; sources connect in the background)."""
        for sup in self.supervisors.values():
            sup.start()

    async def stop(self) -> None:
        """Stop every source cleanly."""
        await asyncio.gather(*(sup.stop() for sup in self.supervisors.values()))

    async def run(self) -> None:
        """Start, then wait until cancelled; stops the sources on the way out."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def statuses(self) -> list[SourceStatus]:
        """State of every source, for a status page."""
        return [sup.status for sup in self.supervisors.values()]

    def source(self, name: str) -> Source | None:
        """The source called ``name``."""
        return self.sources.get(name)

    def simulator(self, name: str | None = None) -> SimulatorSource | None:
        """The simulator source (by name, or the first one)."""
        for src in self.sources.values():
            if isinstance(src, SimulatorSource) and (name is None or src.name == name):
                return src
        return None

    def webhook(self, name: str) -> WebhookSource | None:
        """The webhook source called ``name`` (for ``POST /cti/webhook/{name}``)."""
        src = self.sources.get(name)
        return src if isinstance(src, WebhookSource) else None

    async def dial(
        self,
        extension: str | None,
        number: str,
        *,
        source: str = "",
        line: str = "",
        call_id: str | None = None,
    ) -> str:
        """Click-to-dial through ``source`` (by name) or the first dial-capable source of
        ``line`` (any line when empty) that is up; returns the call id.

        Raises :class:`~cti_bridge.source.DialError`.
        """
        candidates = [
            s
            for s in self.sources.values()
            if s.can_dial and (not source or s.name == source) and (not line or s.line == line)
        ]
        if not candidates:
            raise DialError(f"no source can dial (source={source!r}, line={line!r})")
        for src in candidates:
            if self.supervisors[src.name].state == "up":
                return await src.dial(extension, number, call_id=call_id)
        raise DialError(f"source {candidates[0].name!r} is not connected")


async def run_bridge(configs: Iterable[SourceConfig], bus: Bus) -> None:
    """Run a supervisor per enabled source until cancelled."""
    await Bridge(build_sources(configs), bus).run()


async def _serve_commands(bridge: Bridge, bus: RedisBus) -> None:
    while True:
        try:
            await _serve_commands_once(bridge, bus)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("bridge command channel failed (%s); retrying", exc)
            await asyncio.sleep(1.0)


async def _serve_commands_once(bridge: Bridge, bus: RedisBus) -> None:
    async for cmd in bus.commands():
        if cmd.get("op") != "dial":
            log.warning("unknown bridge command %r", cmd.get("op"))
            continue
        call_id = str(cmd.get("call_id") or "")
        ext = cmd.get("extension")
        try:
            await bridge.dial(
                str(ext) if ext else None,
                str(cmd.get("number") or ""),
                source=str(cmd.get("source") or ""),
                line=str(cmd.get("line") or ""),
                call_id=call_id or None,
            )
        except DialError as exc:
            log.warning("dial %s failed: %s", call_id, exc)
            await bus.publish(
                CallEnded(
                    source=str(cmd.get("source") or "bridge"),
                    call_id=call_id,
                    line=str(cmd.get("line") or ""),
                    answered=False,
                    reason="dial_failed",
                )
            )


async def main(configs: Iterable[SourceConfig], redis_url: str, *, prefix: str = "yebisu") -> None:
    """The standalone bridge (``yebisu bridge``): sources → Redis stream, dial requests ←
    Redis pub/sub. Runs until cancelled or SIGTERM/SIGINT."""
    bus = RedisBus(redis_url, prefix=prefix)
    bridge = Bridge(build_sources(configs), bus)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    installed: list[signal.Signals] = []
    if task is not None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, task.cancel)
                installed.append(sig)
    log.info("CTI bridge: %d source(s), publishing to %s", len(bridge.sources), bus.stream)
    commands = asyncio.create_task(_serve_commands(bridge, bus))
    # Source states for 管理 (a key per process with a TTL, through the bus's connection).
    status = asyncio.create_task(
        StatusPublisher(bus.redis, bridge.statuses, prefix=prefix).run(), name="bridge-status"
    )
    try:
        await bridge.run()
    finally:
        commands.cancel()
        status.cancel()
        await asyncio.wait({commands, status})
        for sig in installed:
            loop.remove_signal_handler(sig)
        await bus.close()
