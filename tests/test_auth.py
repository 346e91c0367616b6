"""Log-in, log-out, CSRF, lock-out, roles and websocket authentication."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.conftest import csrf_of, login


def test_pages_require_login(client: Any) -> None:
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/")
    r = client.get("/orders", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 401 and r.headers["HX-Redirect"].startswith("/login")
    assert client.get("/healthz").text == "ok"


def test_login_shows_japanese_menu_and_logout(client: Any, make_staff: Callable[..., int]) -> None:
    make_staff("koga", name="古賀 雅美", extension="201")
    r = login(client, "koga")
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = client.get("/").text
    for label in ("顧客モニタ", "受注一覧", "長期放置顧客"):
        assert label in page
    assert "古賀 雅美" in page and "内線 201" in page
    assert "マスタ" not in page.split("<main")[0]  # an operator's menu has no masters
    token = csrf_of(client)
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_binds_the_extension_given(client: Any, make_staff: Callable[..., int]) -> None:
    make_staff("op", extension="201", allowed_extensions="305, 306")
    make_staff("op2", extension="202")
    login(client, "op", extension="305")
    assert "内線 305" in client.get("/").text
    # Only the registered extension, or one of 使える内線, may be bound
    client.cookies.clear()
    r = login(client, "op2", extension="305")
    assert r.status_code == 400
    assert "内線 305 はこのログインIDでは使えません。" in r.text


def test_wrong_password_message_beside_field(client: Any, make_staff: Callable[..., int]) -> None:
    make_staff("op")
    r = login(client, "op", "wrong-password")
    assert r.status_code == 400
    assert "ログインIDまたはパスワードが違います。" in r.text
    r = login(client, "nobody", "whatever12")
    assert "ログインIDまたはパスワードが違います。" in r.text
    r = login(client, "", "")
    assert "ログインIDを入力してください。" in r.text and "パスワードを入力してください。" in r.text


def test_lockout_after_repeated_failures(client: Any, make_staff: Callable[..., int]) -> None:
    make_staff("op")
    for _ in range(4):
        assert "パスワードが違います" in login(client, "op", "bad-password").text
    r = login(client, "op", "bad-password")
    assert "ロックしました" in r.text
    r = login(client, "op", "password123")  # the right password no longer opens it
    assert r.status_code == 400 and "ロックされています" in r.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_csrf_rejected_without_or_with_wrong_token(
    client: Any, make_staff: Callable[..., int]
) -> None:
    make_staff("op")
    csrf_of(client)
    r = client.post("/login", data={"login": "op", "password": "password123"})
    assert r.status_code == 403 and "不正な送信" in r.text
    r = client.post("/login", data={"login": "op", "password": "password123", "csrf_token": "x"})
    assert r.status_code == 403
    assert login(client, "op").status_code == 303
    # htmx requests carry the token as a header
    r = client.post("/logout", headers={"HX-Request": "true", "X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = client.post("/logout", headers={"X-CSRF-Token": csrf_of(client)}, follow_redirects=False)
    assert r.status_code == 303


@pytest.mark.parametrize(
    ("role", "path", "allowed"),
    [
        ("operator", "/masters", False),
        ("operator", "/board", False),
        ("operator", "/customers", True),
        ("supervisor", "/board", True),
        ("supervisor", "/masters", False),
        ("backoffice", "/masters", True),
        ("backoffice", "/admin", False),
        ("admin", "/admin", True),
        ("admin", "/board", True),
    ],
)
def test_role_checks(
    client: Any, make_staff: Callable[..., int], role: str, path: str, allowed: bool
) -> None:
    make_staff("someone", role=role)
    login(client, "someone")
    r = client.get(path)
    if allowed:
        assert r.status_code == 200
    else:
        assert r.status_code == 403 and "権限がありません" in r.text


def test_admin_sees_cti_sources_staff_and_audit_log(
    client: Any, make_staff: Callable[..., int]
) -> None:
    make_staff("adm", role="admin", name="管理 太郎")
    login(client, "adm")
    page = client.get("/admin").text
    assert "CTI 接続状態" in page and "simulator" in page
    assert "管理 太郎" in page and "login" in page


def test_unbuilt_sections_say_so(client: Any, make_staff: Callable[..., int]) -> None:
    make_staff("adm", role="admin")
    login(client, "adm")
    r = client.get("/reports")
    assert r.status_code == 200 and "まだ作られていません" in r.text


def test_websocket_requires_a_session(client: Any, make_staff: Callable[..., int]) -> None:
    with pytest.raises(WebSocketDisconnect) as exc, client.websocket_connect("/ws") as ws:
        ws.receive_text()
    assert exc.value.code == 4401
    make_staff("op")
    login(client, "op")
    with client.websocket_connect("/ws") as ws:
        ws.send_text("{}")  # accepted: a logged-in session may connect


def test_audit_log_records_logins(
    client: Any, make_staff: Callable[..., int], settings: Any
) -> None:
    import asyncio

    from sqlalchemy import select

    from app.audit.models import AuditLog
    from app.db import make_engine, make_sessionmaker

    make_staff("op")
    login(client, "op", "bad-password")
    login(client, "op")

    async def actions() -> list[str]:
        engine = make_engine(settings.database.url)
        try:
            async with make_sessionmaker(engine)() as s:
                return list((await s.scalars(select(AuditLog.action).order_by(AuditLog.id))).all())
        finally:
            await engine.dispose()

    got = asyncio.run(actions())
    assert got[-2:] == ["login_failed", "login"]
