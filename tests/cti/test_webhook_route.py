"""``POST /cti/webhook/{source}`` on the real app: signed timestamps, replays, restarts,
oversized and hostile bodies."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.calls.models import Call
from app.calls.service import pop_key
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from cti_bridge.config import WebhookSourceConfig
from tests.conftest import LiveServer, login, run_async

SECRET = "hook-secret-0123456789"


def post_signed(
    c: Any, data: dict[str, Any] | bytes, *, ts: int | None = None, source: str = "cloud"
) -> tuple[Any, bytes, dict[str, str]]:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    stamp = str(int(time.time()) if ts is None else ts)
    sig = (
        "sha256="
        + hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    )
    headers = {
        "X-Yebisu-Signature": sig,
        "X-Yebisu-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    return c.post(f"/cti/webhook/{source}", content=body, headers=headers), body, headers


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    settings.cti.sources = [
        *settings.cti.sources,
        WebhookSourceConfig(name="cloud", secret=SECRET, tolerance_s=300),
    ]
    return settings


@pytest.fixture
def app_client(hook_settings: Settings, tmp_path: Path) -> Iterator[Any]:
    with TestClient(create_app(hook_settings, var_dir=tmp_path / "var")) as c:
        yield c


def ring(call_id: str, ext: str = "301") -> dict[str, Any]:
    return {"event": "ringing", "call_id": call_id, "from": "0312345678", "extension": ext}


def call_state(database_url: str, call_id: str) -> str | None:
    async def read() -> str | None:
        engine = make_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as s:
                return await s.scalar(select(Call.state).where(Call.source_call_id == call_id))
        finally:
            await engine.dispose()

    return run_async(read())


def test_signed_timestamp_required_replay_409_stale_401(
    app_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "yebisu.cti")
    r, body, headers = post_signed(app_client, {"event": "answered", "call_id": "r-1"})
    assert r.status_code == 204
    again = app_client.post("/cti/webhook/cloud", content=body, headers=headers)
    assert again.status_code == 409 and again.json() == {"error": "request already received"}
    # The same body signed at another moment is a new request (events are idempotent).
    assert post_signed(app_client, body, ts=int(time.time()) - 5)[0].status_code == 204
    stale, _, _ = post_signed(app_client, body, ts=int(time.time()) - 301)
    assert stale.status_code == 401 and "X-Yebisu-Timestamp" in stale.json()["error"]
    future, _, _ = post_signed(app_client, body, ts=int(time.time()) + 301)
    assert future.status_code == 401
    no_ts = {k: v for k, v in headers.items() if k != "X-Yebisu-Timestamp"}
    assert app_client.post("/cti/webhook/cloud", content=body, headers=no_ts).status_code == 401
    old_style = {
        "X-Yebisu-Signature": "sha256="
        + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "X-Yebisu-Timestamp": headers["X-Yebisu-Timestamp"],
    }
    assert app_client.post("/cti/webhook/cloud", content=body, headers=old_style).status_code == 401
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 5 and all(r.exc_info is None for r in refusals)


def frames_until(ws: Any, marker: str, limit: int = 20) -> list[str]:
    out: list[str] = []
    for _ in range(limit):
        out.append(ws.receive_text())
        if marker in out[-1]:
            return out
    raise AssertionError(f"{marker} never came: {out}")


def test_signed_ringing_replayed_after_a_restart_pops_nothing(
    hook_settings: Settings,
    tmp_path: Path,
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    make_staff("op", extension="301")
    ghost = pop_key("cloud", "g-1")
    with TestClient(create_app(hook_settings, var_dir=tmp_path / "var")) as c:
        login(c, "op")
        with c.websocket_connect("/ws") as ws:
            r, ring_body, ring_headers = post_signed(c, ring("g-1"))
            assert r.status_code == 204
            assert f'id="pop-{ghost}"' in ws.receive_text()
            assert post_signed(c, {"event": "missed", "call_id": "g-1"})[0].status_code == 204
            assert f'id="pop-{ghost}" hx-swap-oob="delete"' in ws.receive_text()
    for _ in range(100):
        if call_state(database_url, "g-1") == "missed":
            break
        time.sleep(0.02)
    assert call_state(database_url, "g-1") == "missed"

    # The app restarts; the captured signed ringing is replayed within the tolerance. With
    # Redis the restarted app still knows the signature (409); without, it accepts the post
    # but the call is over: no pop either way. A later call pops as usual.
    with TestClient(create_app(hook_settings, var_dir=tmp_path / "var")) as c:
        login(c, "op")
        with c.websocket_connect("/ws") as ws:
            replay = c.post("/cti/webhook/cloud", content=ring_body, headers=ring_headers)
            assert replay.status_code == (409 if hook_settings.redis.url else 204)
            # The PBX resends the ringing, signed afresh (a later timestamp: the same body and
            # timestamp again would be the same request, a replay).
            resent = post_signed(c, ring("g-1"), ts=int(ring_headers["X-Yebisu-Timestamp"]) + 1)
            assert resent[0].status_code == 204
            fresh = pop_key("cloud", "g-2")
            assert post_signed(c, ring("g-2"))[0].status_code == 204
            frames = frames_until(ws, f'id="pop-{fresh}"')
            assert not any(ghost in f for f in frames), frames
    assert call_state(database_url, "g-1") == "missed"


def test_deeply_nested_signed_body_is_a_clean_400(
    app_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r, _, _ = post_signed(app_client, b"[" * 30000 + b"]" * 30000)
    assert r.status_code == 400 and r.json() == {"error": "body: nested too deeply"}
    assert all(rec.exc_info is None for rec in caplog.records)
    assert [rec.levelname for rec in caplog.records if "refused" in rec.getMessage()] == ["WARNING"]
    assert "Traceback" not in caplog.text


def test_body_over_64_kib_is_413(app_client: Any) -> None:
    big = json.dumps({"event": "answered", "call_id": "b-1", "pad": "x" * 70000}).encode()
    assert post_signed(app_client, big)[0].status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: read in chunks, stopped past 64 KiB
        for _ in range(100):
            yield b" " * 4096

    r = app_client.post(
        "/cti/webhook/cloud", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


def raw_request(server: LiveServer, head: bytes, body: bytes = b"") -> bytes:
    url = urlsplit(server.url)
    with socket.create_connection((url.hostname or "", url.port or 0), timeout=10) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


@pytest.fixture
def hook_server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    sources = [{"kind": "simulator"}, {"kind": "webhook", "name": "cloud", "secret": SECRET}]
    return live_server_factory({"YEBISU_CTI_SOURCES": json.dumps(sources)})


def test_oversized_body_is_answered_without_reading_it(
    hook_server: LiveServer,
) -> None:
    started = time.monotonic()
    reply = raw_request(
        hook_server,
        b"POST /cti/webhook/cloud HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000\r\n\r\n",
        b"{",
    )
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert time.monotonic() - started < 5
    reply = raw_request(
        hook_server,
        b"POST /cti/webhook/cloud HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        b"".join(b"1000\r\n" + b" " * 4096 + b"\r\n" for _ in range(20)),
    )
    assert reply.startswith(b"HTTP/1.1 413"), reply
    reply = raw_request(
        hook_server,
        b"POST /cti/webhook/cloud HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1e9\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 4"), reply
    assert "Traceback" not in hook_server.output()
