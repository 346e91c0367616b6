"""On a real server: a retired, logged-out or reset staff member's open websocket closes
within a second (code 4401), also when it is held by another app process (Redis)."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import need


class Browser:
    """One browser's cookies against a live server."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)

    def token(self) -> str:
        m = re.search(
            r'name="csrf_token" value="([^"]+)"',
            self.http.get("/login", follow_redirects=True).text,
        )
        assert m
        return m.group(1)

    def login(self, login_id: str, **extra: str) -> None:
        r = self.http.post(
            "/login",
            data={
                "login": login_id,
                "password": "password123",
                "csrf_token": self.token(),
                **extra,
            },
        )
        assert r.status_code == 303, r.text

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.http.post(path, data={**data, "csrf_token": self.token()})

    def cookie(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())

    def socket(self, url: str, path: str = "/ws") -> ClientConnection:
        ws_url = url.replace("http://", "ws://") + path
        return connect(ws_url, additional_headers={"Cookie": self.cookie()})

    def close(self) -> None:
        self.http.close()


def closed_within(ws: ClientConnection, since: float, limit: float = 1.0) -> int:
    """Wait for the server to close ``ws``; returns the close code, failing after ``limit``
    seconds counted from ``since``."""
    with pytest.raises(ConnectionClosed) as exc:
        while True:
            ws.recv(timeout=max(0.05, since + limit - time.monotonic()))
    assert time.monotonic() - since < limit, "the socket closed too late"
    assert exc.value.rcvd is not None
    return int(exc.value.rcvd.code)


def test_retirement_closes_the_open_socket_within_a_second(
    live_server_factory: Callable[..., Any], make_staff: Callable[..., int]
) -> None:
    koga = make_staff("koga", name="古賀 雅美", extension="201")
    make_staff("office", role="backoffice")
    server = live_server_factory()
    operator, office = Browser(server.url), Browser(server.url)
    try:
        operator.login("koga")
        office.login("office")
        with operator.socket(server.url) as ws:
            ws.send("{}")
            r = office.post(f"/masters/staff/{koga}/active", {"active": "0"})
            assert r.status_code == 303
            assert closed_within(ws, time.monotonic()) == 4401
        r = operator.http.get("/customers")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        with pytest.raises(Exception), operator.socket(server.url) as ws:  # noqa: B017
            ws.recv(timeout=2)
    finally:
        operator.close()
        office.close()


def test_log_out_on_one_pc_closes_the_socket_of_the_other(
    live_server_factory: Callable[..., Any], make_staff: Callable[..., int]
) -> None:
    make_staff("koga", extension="201")
    server = live_server_factory()
    desk, laptop = Browser(server.url), Browser(server.url)
    try:
        desk.login("koga")
        laptop.login("koga")
        with desk.socket(server.url) as ws:
            ws.send("{}")
            laptop.post("/logout", {})
            assert closed_within(ws, time.monotonic()) == 4401
    finally:
        desk.close()
        laptop.close()


def test_live_board_and_todays_responses_close_with_the_session(
    live_server_factory: Callable[..., Any], make_staff: Callable[..., int]
) -> None:
    """The board's feed (callers' numbers, customers' names) and 本日の対応 end with the
    session too: a retired supervisor loses the open board at once, and log-out closes
    本日の対応's feed."""
    leader = make_staff("leader", role="supervisor")
    make_staff("op", extension="201")
    make_staff("boss", role="admin")
    server = live_server_factory()
    sv, op, admin = Browser(server.url), Browser(server.url), Browser(server.url)
    try:
        sv.login("leader")
        op.login("op")
        admin.login("boss")
        with sv.socket(server.url, "/board/ws?topic=board") as ws:
            assert "board" in ws.recv(timeout=5)  # the board at once
            r = admin.post(f"/masters/staff/{leader}/active", {"active": "0"})
            assert r.status_code == 303
            assert closed_within(ws, time.monotonic()) == 4401
        with op.socket(server.url, "/board/ws?topic=responses") as ws:
            ws.send("{}")
            op.post("/logout", {})
            assert closed_within(ws, time.monotonic()) == 4401
    finally:
        sv.close()
        op.close()
        admin.close()


@pytest.fixture
def redis_env() -> dict[str, str]:
    url = os.environ.get("YEBISU_TEST_REDIS_URL", "")
    need(bool(url), "Redis (YEBISU_TEST_REDIS_URL)")
    return {"YEBISU_REDIS_URL": url, "YEBISU_REDIS_CHANNEL_PREFIX": "rv" + uuid.uuid4().hex[:8]}


@pytest.mark.redis
def test_retirement_on_one_process_closes_the_socket_held_by_another(
    live_server_factory: Callable[..., Any],
    make_staff: Callable[..., int],
    redis_env: dict[str, str],
) -> None:
    koga = make_staff("koga", extension="201")
    yamada = make_staff("yamada", extension="202")
    make_staff("boss", role="admin")
    one = live_server_factory(redis_env)
    two = live_server_factory(redis_env)
    operator, other, admin = Browser(one.url), Browser(one.url), Browser(one.url)
    try:
        operator.login("koga")
        other.login("yamada")
        admin.login("boss")
        # the operators watch process two; the administrator works on process one
        with operator.socket(two.url) as ws, other.socket(two.url) as bystander:
            ws.send("{}")
            bystander.send("{}")
            r = admin.post(f"/masters/staff/{koga}/active", {"active": "0"})
            assert r.status_code == 303
            assert closed_within(ws, time.monotonic()) == 4401
            # a password reset does the same for another one
            form = {"login": "yamada", "name": "yamada", "role": "operator", "active": "1"}
            r = admin.post(f"/masters/staff/{yamada}", {**form, "password": "reset-pass-1"})
            assert r.status_code == 303
            assert closed_within(bystander, time.monotonic()) == 4401
    finally:
        for b in (operator, other, admin):
            b.close()
