"""Several processes: `yebisu bridge` beside the modem, two app processes, Redis between them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from app.config import Settings
from tests.conftest import need
from tests.cti.conftest import PtyPair
from tests.devices import FakeModem
from tests.factories import add_customer

pytestmark = [pytest.mark.redis, pytest.mark.serial]


@pytest.fixture
def redis_env() -> dict[str, str]:
    url = os.environ.get("YEBISU_TEST_REDIS_URL", "")
    need(bool(url), "Redis (YEBISU_TEST_REDIS_URL)")
    return {
        "YEBISU_REDIS_URL": url,
        "YEBISU_REDIS_CHANNEL_PREFIX": "mp" + uuid.uuid4().hex[:8],
        "YEBISU_CTI_IN_PROCESS": "false",
    }


@pytest.fixture
def bridge_factory(
    settings: Settings, tmp_path: Path
) -> Iterator[Callable[[dict[str, str]], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = tmp_path / f"bridge-{len(procs)}.log"
        full = {**os.environ, "YEBISU_DATABASE_URL": settings.database.url, **env}
        full.pop("YEBISU_CONFIG", None)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app", "bridge"],
                cwd=tmp_path,
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def cookie_for(url: str, login: str) -> str:
    with httpx.Client(base_url=url) as c:
        m = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
        assert m
        r = c.post(
            "/login", data={"login": login, "password": "password123", "csrf_token": m.group(1)}
        )
        assert r.status_code in (200, 303)
        return "; ".join(f"{k}={v}" for k, v in c.cookies.items())


def receive_pop(ws: Any, within: float = 15.0) -> str:
    deadline = time.monotonic() + within
    while True:
        frame = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        if 'hx-swap-oob="afterbegin"' in frame:
            return str(frame)


def test_bridge_process_to_operator_on_another_app_process(
    live_server_factory: Callable[..., Any],
    bridge_factory: Callable[[dict[str, str]], subprocess.Popen[bytes]],
    make_staff: Callable[..., int],
    database_url: str,
    redis_env: dict[str, str],
    modem_pty: PtyPair,
) -> None:
    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678")
    make_staff("koga", name="古賀 雅美", extension="201")
    sources = json.dumps(
        [{"kind": "modem", "port": str(modem_pty.dev), "init": ["AT+VCID=1"], "ring_end_s": 60.0}]
    )
    # The bridge starts first and publishes while no app is up: the stream keeps the event.
    bridge = bridge_factory({**redis_env, "YEBISU_CTI_SOURCES": sources})
    modem = FakeModem(modem_pty.peer)
    try:
        modem.wait_initialised()
        modem.send(b"\r\nDATE = 1123\r\nTIME = 1405\r\nNMBR = 0952326611\r\n\r\nRING\r\n")
        time.sleep(0.5)
        a = live_server_factory(redis_env)
        b = live_server_factory(redis_env)
        cookie = cookie_for(a.url, "koga")  # logged in through process A …
        ws_url = b.url.replace("http://", "ws://") + "/ws"
        with connect(ws_url, additional_headers={"Cookie": cookie}) as ws:  # … watching B
            # the call buffered while the apps were away is still ringing: it pops
            assert "佐賀 太郎" in receive_pop(ws)
            modem.send(b"\r\nDATE = 1123\r\nTIME = 1406\r\nNMBR = 0312345678\r\n\r\nRING\r\n")
            assert "北田 君子" in receive_pop(ws)
        assert bridge.poll() is None, "the bridge process died"
    finally:
        modem.close()
