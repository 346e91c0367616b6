"""Source states of a standalone bridge (``yebisu bridge``), published to Redis for 管理.

Every bridge process writes one key, ``{prefix}:cti:bridge:{host}-{pid}``, holding JSON::

    {"process": "host-1234", "host": "host", "pid": 1234, "started_at": "…", "at": "…",
     "sources": [<SourceStatus.to_dict()>, …]}

refreshed every ``every_s`` seconds with a TTL of ``ttl_s``: the key of a process that went
away expires by itself. Readers (the app) treat an entry whose ``at`` is older than
``stale_after_s`` as not answering. The bridge writes through its own Redis connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from cti_bridge.events import utcnow
from cti_bridge.supervisor import SourceStatus

__all__ = [
    "BridgeProcess",
    "StatusPublisher",
    "key_prefix",
    "read_bridge_statuses",
]

log = logging.getLogger(__name__)

EVERY_S = 5.0
TTL_S = 60
STALE_AFTER_S = 15.0


def key_prefix(prefix: str) -> str:
    """Where the bridge processes' keys live (``{prefix}:cti:bridge:``)."""
    return f"{prefix}:cti:bridge:"


class StatusPublisher:
    """Write the statuses returned by ``statuses`` to Redis every ``every_s`` seconds."""

    def __init__(
        self,
        redis: Redis,
        statuses: Callable[[], list[SourceStatus]],
        *,
        prefix: str = "yebisu",
        every_s: float = EVERY_S,
        ttl_s: int = TTL_S,
    ) -> None:
        self.redis = redis
        self.statuses = statuses
        self.every_s = every_s
        self.ttl_s = ttl_s
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.process = f"{self.host}-{self.pid}"
        self.key = key_prefix(prefix) + self.process
        self.started_at = utcnow()

    def payload(self) -> str:
        """The JSON written to the key."""
        return json.dumps(
            {
                "process": self.process,
                "host": self.host,
                "pid": self.pid,
                "started_at": self.started_at.isoformat(),
                "at": utcnow().isoformat(),
                "sources": [s.to_dict() for s in self.statuses()],
            },
            ensure_ascii=False,
        )

    async def publish_once(self) -> None:
        """Write the key now (``SET … EX ttl``)."""
        await self.redis.set(self.key, self.payload(), ex=self.ttl_s)

    async def run(self) -> None:
        """Publish until cancelled (Redis errors are logged and retried); the key is deleted
        on the way out."""
        failing = False
        try:
            while True:
                try:
                    await self.publish_once()
                    if failing:
                        log.info("bridge status: publishing to Redis again")
                    failing = False
                except Exception as exc:  # a Redis outage must not stop the bridge
                    if not failing:
                        log.warning("bridge status: cannot publish to Redis: %s", exc)
                    failing = True
                await asyncio.sleep(self.every_s)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.redis.delete(self.key), 2.0)


@dataclass(frozen=True, slots=True)
class BridgeProcess:
    """One ``yebisu bridge`` process as last published."""

    process: str
    host: str
    pid: int
    started_at: datetime
    at: datetime
    sources: list[SourceStatus]
    stale: bool  # not refreshed for longer than ``stale_after_s``: 応答なし


async def read_bridge_statuses(
    redis: Redis, *, prefix: str = "yebisu", stale_after_s: float = STALE_AFTER_S
) -> list[BridgeProcess]:
    """Every bridge process whose key has not expired, by process name; malformed entries
    are skipped (logged)."""
    keys = sorted([k async for k in redis.scan_iter(match=key_prefix(prefix) + "*", count=100)])
    if not keys:
        return []
    values = await redis.mget(keys)
    now = utcnow()
    out: list[BridgeProcess] = []
    for key, raw in zip(keys, values, strict=True):
        if raw is None:
            continue
        try:
            data: dict[str, Any] = json.loads(raw)
            at = datetime.fromisoformat(str(data["at"]))
            out.append(
                BridgeProcess(
                    process=str(data["process"]),
                    host=str(data.get("host", "")),
                    pid=int(data.get("pid", 0)),
                    started_at=datetime.fromisoformat(str(data["started_at"])),
                    at=at,
                    sources=[SourceStatus.from_dict(s) for s in data.get("sources", [])],
                    stale=(now - at).total_seconds() > stale_after_s,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("bridge status %r unreadable: %s", key, exc)
    return out
