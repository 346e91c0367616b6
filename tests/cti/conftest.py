"""Fixtures for the CTI bridge tests: real tools (socat, sipp, Redis) or skip/fail.

A missing tool or service fails the test when ``CI=true`` and skips it elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cti_bridge.events import CallEvent
from tests.conftest import need

HERE = Path(__file__).resolve().parent
TRANSCRIPTS = HERE / "transcripts"
SIPP_SCENARIOS = HERE / "sipp"
require = need  # fail in CI, skip elsewhere, when a tool or service is missing


def transcript(name: str) -> bytes:
    """The bytes of a recorded wire transcript."""
    return (TRANSCRIPTS / name).read_bytes()


def shape(event: CallEvent) -> dict[str, Any]:
    """An event as a dict without the parts that differ between runs (call id, time)."""
    data = event.to_dict()
    data.pop("call_id")
    data.pop("at")
    return data


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def until(predicate: Callable[[], bool], within: float = 5.0, what: str = "") -> None:
    """Wait until ``predicate()`` is true (polling every 10 ms); fail after ``within`` s."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


class Sink:
    """An ``emit`` callable that records events and lets tests await them."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self._queue: asyncio.Queue[CallEvent] = asyncio.Queue()

    async def __call__(self, event: CallEvent) -> None:
        self.events.append(event)
        self._queue.put_nowait(event)

    async def next(self, within: float = 5.0) -> CallEvent:
        try:
            return await asyncio.wait_for(self._queue.get(), within)
        except TimeoutError:
            pytest.fail(f"no event within {within} s (got so far: {self.events})")

    def pending(self) -> int:
        return self._queue.qsize()


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def socat_bin() -> str:
    path = shutil.which("socat")
    require(path is not None, "socat")
    assert path is not None
    return path


@pytest.fixture
def sipp_bin() -> str:
    path = shutil.which("sipp")
    require(path is not None, "sipp (Debian package sip-tester)")
    assert path is not None
    return path


@pytest.fixture
def cti_redis_url() -> str:
    url = os.environ.get("YEBISU_TEST_REDIS_URL", "")
    require(bool(url), "Redis (YEBISU_TEST_REDIS_URL)")
    return url


class PtyPair:
    """Two linked ptys made by socat: ``dev`` for the bridge, ``peer`` for the fake device."""

    def __init__(self, socat: str, directory: Path) -> None:
        self.socat = socat
        self.dev = directory / "ttyBRIDGE"
        self.peer = directory / "ttyDEVICE"
        self.log = directory / "socat.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None
        self.log.write_bytes(b"")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.socat,
                    "-d",
                    "-d",
                    f"pty,raw,echo=0,link={self.dev}",
                    f"pty,raw,echo=0,link={self.peer}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 5
        while b"starting data transfer loop" not in self.log.read_bytes():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"socat did not start: {self.log.read_text()}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Make the device vanish (socat removes both links)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def pty_pair(socat_bin: str, tmp_path: Path) -> Iterator[PtyPair]:
    pair = PtyPair(socat_bin, tmp_path)
    pair.start()
    try:
        yield pair
    finally:
        pair.stop()


@pytest.fixture
async def redis_prefix(cti_redis_url: str) -> AsyncIterator[str]:
    """A unique key prefix; its keys are deleted afterwards."""
    import uuid

    from redis.asyncio import Redis

    prefix = f"yebisu-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = Redis.from_url(cti_redis_url)
    try:
        keys = [k async for k in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# --- hypothesis profiles (tests/cti/test_fuzz_parsers.py) -------------------------------------
# `make test`: "dev", a few examples per property; `make fuzz`: HYPOTHESIS_PROFILE=fuzz.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("dev", max_examples=40, deadline=None, database=None)
_hypothesis_settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None, database=None, print_blob=True
)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
