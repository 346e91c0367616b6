"""``yebisu bridge`` processes publish their source states to Redis; 管理 shows them, and a
process that went away shows 応答なし, then disappears."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from app.config import Settings
from cti_bridge.status import StatusPublisher, read_bridge_statuses
from cti_bridge.supervisor import SourceState, Supervisor
from tests.conftest import login, need, run_async

from .conftest import Sink, until
from .test_source_down import Down


async def test_publisher_writes_a_key_with_ttl_and_readers_see_it(
    cti_redis_url: str, redis_prefix: str
) -> None:
    redis = Redis.from_url(cti_redis_url)
    sup = Supervisor(Down(), Sink(), min_s=0.01, max_s=0.02)
    sup.start()
    pub = StatusPublisher(redis, lambda: [sup.status], prefix=redis_prefix, every_s=0.05, ttl_s=2)
    task = asyncio.create_task(pub.run())
    try:
        await until(lambda: sup.status.failures >= 2)
        await asyncio.sleep(0.1)
        [proc] = await read_bridge_statuses(redis, prefix=redis_prefix)
        assert proc.process == pub.process and not proc.stale
        [status] = proc.sources
        assert status.name == "pbx" and status.state in (SourceState.DOWN, SourceState.CONNECTING)
        assert "ConnectionError: first" in status.last_error
        assert 0 < await redis.ttl(pub.key) <= 2
        # A process that stops refreshing: 応答なし once stale, gone when the TTL runs out.
        task.cancel()
        await asyncio.wait({task})
        assert await read_bridge_statuses(redis, prefix=redis_prefix) == []  # clean exit
        await pub.publish_once()
        [proc] = await read_bridge_statuses(redis, prefix=redis_prefix, stale_after_s=0)
        assert proc.stale
        await asyncio.sleep(2.2)
        assert await read_bridge_statuses(redis, prefix=redis_prefix) == []
        await redis.set(f"{redis_prefix}:cti:bridge:junk", b"{not json", ex=5)
        assert await read_bridge_statuses(redis, prefix=redis_prefix) == []
    finally:
        task.cancel()
        await sup.stop()
        await redis.aclose()


@pytest.fixture
def redis_client(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    """The app with Redis on either run (the SQLite run's settings have none): 管理 reads the
    bridge processes' states from Redis."""
    from starlette.testclient import TestClient

    from app.main import create_app

    url = os.environ.get("YEBISU_TEST_REDIS_URL", "")
    need(bool(url), "Redis (YEBISU_TEST_REDIS_URL)")
    settings.redis.url = url
    with TestClient(create_app(settings, var_dir=tmp_path / "var")) as c:
        yield c


def test_admin_shows_a_bridge_process_source_down_with_its_error(
    redis_client: Any, settings: Settings, make_staff: Callable[..., int], tmp_path: Path
) -> None:
    client = redis_client
    make_staff("boss", role="admin")
    login(client, "boss")
    sources = [
        {"kind": "nd", "name": "nd-7e1", "line": "tokyo", "port": str(tmp_path / "ttyGONE"),
         "reconnect_min_s": 0.05, "reconnect_max_s": 0.1},
        {"kind": "simulator", "name": "sim-b"},
    ]  # fmt: skip
    env = {
        **os.environ,
        "YEBISU_DATABASE_URL": settings.database.url,
        "YEBISU_REDIS_URL": settings.redis.url,
        "YEBISU_REDIS_CHANNEL_PREFIX": settings.redis.channel_prefix,
        "YEBISU_CTI_SOURCES": json.dumps(sources),
        "YEBISU_CTI_IN_PROCESS": "false",
    }
    env.pop("YEBISU_CONFIG", None)
    log = tmp_path / "bridge.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "bridge"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        page = ""
        while time.monotonic() < deadline:
            page = client.get("/admin").text
            if "nd-7e1" in page and "ttyGONE" in page:
                break
            time.sleep(0.2)
        assert "nd-7e1" in page and "ttyGONE" in page, log.read_text(errors="replace")
        assert "切断（再接続待ち）" in page or "接続中" in page
        assert "sim-b" in page and f"-{proc.pid}" in page
        assert "応答なし" not in page
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text(errors="replace")
    assert text.count("-> down") == 1 and "Traceback" not in text, text
    page = client.get("/admin").text
    assert "nd-7e1" not in page  # a clean exit removes its key at once

    async def killed_bridge() -> None:  # one that died without a word: stale, then gone
        redis = Redis.from_url(settings.redis.url)
        sup = Supervisor(Down(), Sink())
        pub = StatusPublisher(
            redis, lambda: [sup.status], prefix=settings.redis.channel_prefix, ttl_s=3
        )
        pub.started_at = pub.started_at.replace(year=2020)
        payload = json.loads(pub.payload())
        payload["at"] = "2020-01-01T00:00:00+00:00"
        await redis.set(pub.key, json.dumps(payload), ex=3)
        await redis.aclose()

    run_async(killed_bridge())
    page = client.get("/admin").text
    assert "応答なし" in page
    time.sleep(3.2)
    assert "応答なし" not in client.get("/admin").text
