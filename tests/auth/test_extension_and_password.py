"""An extension has one holder at a time (taking it over is explicit and audited); passwords:
a staff member changes their own, an administrator's reset is changed at the next log-in."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from app.config import Settings
from tests.auth.helpers import audit_actions, staff_row, switch
from tests.calls.test_pop_routes import signed
from tests.conftest import csrf_of, login
from tests.factories import add_customer
from tests.masters.helpers import db_run, post


def presence_of(url: str) -> dict[int, tuple[str, str]]:
    from app.calls.models import Presence

    async def fn(s: Any) -> dict[int, tuple[str, str]]:
        rows = await s.scalars(select(Presence))
        return {p.staff_id: (p.extension, p.state) for p in rows}

    return dict(db_run(url, fn))


def extension_error(html: str) -> str:
    m = re.search(r'id="extension-error">([^<]*)<', html)
    return m.group(1) if m else ""


def test_an_extension_held_by_another_log_in_is_refused_then_taken_over(
    client: Any, make_staff: Callable[..., int], database_url: str, settings: Settings
) -> None:
    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    koga = make_staff("koga", name="古賀 雅美", extension="201")
    yamaguchi = make_staff("yamaguchi", name="山口 由美", extension="202", allowed_extensions="*")
    login(client, "koga")
    koga_jar = dict(client.cookies)
    client.cookies.clear()
    r = login(client, "yamaguchi", extension="201")
    assert r.status_code == 400
    assert extension_error(r.text) == (
        "内線 201 は 古賀 雅美 さんがログイン中に使っています。"
        "引き継ぐときは「内線を引き継ぐ」にチェックして、もう一度ログインしてください。"
    )
    assert 'name="takeover"' in r.text and "内線を引き継ぐ" in r.text
    assert client.get("/customers", follow_redirects=False).status_code == 303  # not logged in
    assert presence_of(database_url)[koga] == ("201", "available")

    r = login(client, "yamaguchi", extension="201", takeover="1")
    assert r.status_code == 303
    assert "内線 201" in client.get("/").text
    presence = presence_of(database_url)
    assert presence[yamaguchi] == ("201", "available") and presence[koga][0] == ""
    takeovers = [a for a in audit_actions(database_url) if a[0] == "extension_takeover"]
    assert takeovers == [
        (
            "extension_takeover",
            yamaguchi,
            koga,
            {"extension": "201", "from": "koga", "to": "yamaguchi"},
        )
    ]
    # The one taken from stays logged in without the extension; its calls pop for the holder
    switch(client, koga_jar)
    page = client.get("/")
    assert page.status_code == 200 and "内線 201" not in page.text
    client.cookies.clear()
    login(client, "yamaguchi", extension="201")  # the holder again: no question
    with client.websocket_connect("/ws") as ws:
        body, headers = signed(
            settings.server.secret_key,
            {"action": "ring", "number": "0952326611", "extension": "201"},
        )
        assert client.post("/cti/simulate", content=body, headers=headers).status_code == 200
        assert "佐賀 太郎" in ws.receive_text()

    from app.calls.models import Call

    async def targets(s: Any) -> list[list[int]]:
        return [list(c.targets) for c in await s.scalars(select(Call))]

    assert db_run(database_url, targets) == [[yamaguchi]]


def test_a_binding_without_a_live_session_is_not_asked_about(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    koga = make_staff("koga", extension="201")
    yamaguchi = make_staff("yamaguchi", extension="202", allowed_extensions="201")
    login(client, "koga")
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert login(client, "yamaguchi", extension="201").status_code == 303
    presence = presence_of(database_url)
    assert presence[yamaguchi][0] == "201" and presence[koga][0] == ""


def test_the_same_staff_member_on_a_second_pc_keeps_the_extension(
    client: Any, make_staff: Callable[..., int]
) -> None:
    make_staff("koga", extension="201")
    login(client, "koga")
    client.cookies.clear()
    assert login(client, "koga").status_code == 303


def test_an_admins_reset_is_changed_at_the_next_log_in(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    make_staff("boss", role="admin")
    koga = make_staff("koga", name="古賀 雅美", extension="201")
    login(client, "boss")
    row = staff_row(database_url, "koga")
    form = {"login": "koga", "name": row.name, "role": "operator", "extension": "201"}
    r = post(client, f"/masters/staff/{koga}", {**form, "active": "1", "password": "temp-pass-1"})
    assert r.status_code == 303
    client.cookies.clear()
    r = login(client, "koga", "temp-pass-1", next="/customers")
    assert r.status_code == 303 and r.headers["location"] == "/password?next=/customers"
    # Every page leads to the change screen until it is done; no live connection opens
    for path in ("/", "/customers", "/orders"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/password"
    r = client.get("/orders", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.headers["HX-Redirect"] == "/password"
    try:
        with client.websocket_connect("/ws") as ws:
            ws.receive_text()
        raise AssertionError("the websocket opened")
    except WebSocketDisconnect as exc:
        assert exc.code == 4401
    page = client.get("/password?next=/customers")
    assert "管理者がパスワードを再設定しました。" in page.text
    assert 'ws-connect="/ws"' not in page.text

    def change(current: str, new: str, again: str) -> Any:
        return client.post(
            "/password",
            data={
                "current": current,
                "new": new,
                "again": again,
                "next": "/customers",
                "csrf_token": csrf_of(client),
            },
        )

    r = change("wrong-pass", "brand-new-1", "brand-new-1")
    assert r.status_code == 400 and "今のパスワードが違います。" in r.text
    r = change("temp-pass-1", "short", "short")
    assert "パスワードは8文字以上にしてください。" in r.text
    r = change("temp-pass-1", "brand-new-1", "brand-new-2")
    assert "新しいパスワードを同じように2回入力してください。" in r.text
    r = change("temp-pass-1", "temp-pass-1", "temp-pass-1")
    assert "今のパスワードと違うパスワードにしてください。" in r.text
    r = change("temp-pass-1", "brand-new-1", "brand-new-1")
    assert r.status_code == 200 and "パスワードを変更しました。" in r.text
    assert 'href="/customers"' in r.text
    assert client.get("/customers", follow_redirects=False).status_code == 200
    actions = [a[:3] for a in audit_actions(database_url)]
    boss = staff_row(database_url, "boss").id
    assert ("password_reset", boss, koga) in actions
    assert ("password_change_failed", koga, koga) in actions
    assert ("password_change", koga, koga) in actions
    client.cookies.clear()
    assert login(client, "koga", "brand-new-1").headers["location"] == "/"


def test_changing_ones_password_ends_the_other_sessions(
    client: Any, make_staff: Callable[..., int]
) -> None:
    make_staff("koga", extension="201")
    login(client, "koga")
    other_pc = dict(client.cookies)
    client.cookies.clear()
    login(client, "koga")
    this_pc = dict(client.cookies)
    with client.websocket_connect("/ws") as ws:
        r = client.post(
            "/password",
            data={
                "current": "password123",
                "new": "brand-new-1",
                "again": "brand-new-1",
                "csrf_token": csrf_of(client),
            },
        )
        assert r.status_code == 200
        ws.send_text("{}")  # this page's own live connection stays open
    assert client.get("/customers", follow_redirects=False).status_code == 200
    switch(client, other_pc)
    r = client.get("/customers", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    switch(client, this_pc)
    assert client.get("/customers", follow_redirects=False).status_code == 200


def test_an_admin_sets_no_own_password_in_the_master(
    client: Any, make_staff: Callable[..., int]
) -> None:
    boss = make_staff("boss", role="admin", name="管理 太郎")
    login(client, "boss")
    r = post(
        client,
        f"/masters/staff/{boss}",
        {
            "login": "boss",
            "name": "管理 太郎",
            "role": "admin",
            "active": "1",
            "password": "x" * 10,
        },
    )
    assert r.status_code == 422 and "「パスワード変更」画面で変更してください" in r.text


def test_an_extension_change_by_an_admin_ends_the_sessions_it_no_longer_allows(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    """A logged-in operator whose 使える内線 no longer include the extension they hold, or
    whose 内線 changes, is logged out at once (open pages closed), on the form and by CSV; a
    change that still allows their extension leaves them working."""
    from tests.masters.test_master_csv import apply_form, upload

    koga = make_staff("koga", name="古賀 雅美", extension="201", allowed_extensions="205")
    make_staff("boss", role="admin", name="管理 太郎")

    def koga_in(extension: str) -> dict[str, str]:
        client.cookies.clear()
        assert login(client, "koga", extension=extension).status_code == 303
        jar = dict(client.cookies)
        client.cookies.clear()
        login(client, "boss")
        return jar

    def edit(**values: str) -> None:
        row = staff_row(database_url, "koga")
        form = {
            "login": "koga",
            "name": row.name,
            "role": row.role,
            "extension": row.extension,
            "allowed_extensions": row.allowed_extensions,
            "line": row.line,
            "active": "1",
            **values,
        }
        assert post(client, f"/masters/staff/{koga}", form).status_code == 303

    def works(jar: dict[str, str]) -> bool:
        switch(client, jar)
        r = client.get("/customers", follow_redirects=False)
        client.cookies.clear()
        login(client, "boss")
        return r.status_code == 200

    jar = koga_in("205")
    edit(allowed_extensions="205,206")  # 205 still allowed
    assert works(jar)
    switch(client, jar)
    with client.websocket_connect("/ws") as ws:
        client.cookies.clear()
        login(client, "boss")
        edit(allowed_extensions="206")
        try:
            ws.receive_text()
            closed = None
        except WebSocketDisconnect as exc:
            closed = exc.code
    assert closed == 4401
    assert not works(jar)
    assert presence_of(database_url)[koga][1] == "offline"
    assert (
        "master_update",
        staff_row(database_url, "boss").id,
        koga,
        {"allowed_extensions": ["205,206", "206"]},
    ) in audit_actions(database_url)

    jar = koga_in("201")  # the registered one: a 使える内線 change leaves it alone
    edit(allowed_extensions="")
    assert works(jar)
    edit(extension="203")  # but a new registered extension ends the session
    assert not works(jar)

    jar = koga_in("203")
    r = upload(client, "staff", "ログインID,内線\nkoga,204\n".encode())
    assert r.status_code == 200
    assert post(client, "/masters/staff/import/apply", apply_form(r.text)).status_code == 303
    assert not works(jar)
