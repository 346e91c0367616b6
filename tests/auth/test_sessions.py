"""Server-side sessions: an opaque cookie, revocation at log-out and by the staff master,
rotation at log-in, idle and absolute timeouts, cheap anonymous sessions."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from app.config import Settings
from tests.auth.helpers import (
    app_client,
    audit_actions,
    session_rows,
    sha256,
    staff_row,
    switch,
)
from tests.conftest import csrf_of, login
from tests.masters.helpers import error_of, post

COOKIE = "yebisu_session"


def refused(client: Any, path: str = "/customers") -> bool:
    r = client.get(path, follow_redirects=False)
    return r.status_code == 303 and r.headers["location"].startswith("/login")


def ws_refused(client: Any) -> bool:
    try:
        with client.websocket_connect("/ws") as ws:
            ws.receive_text()
    except WebSocketDisconnect as exc:
        return exc.code == 4401
    return False


def test_the_cookie_is_an_opaque_id_and_the_table_keeps_only_its_hash(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    make_staff("koga", name="古賀 雅美", extension="201")
    assert login(client, "koga").status_code == 303
    raw = client.cookies.get(COOKIE)
    assert raw and len(raw) >= 40 and "." not in raw  # no signed JSON body in it
    rows = [r for r in session_rows(database_url) if r.staff_id is not None]
    assert [r.id_hash for r in rows] == [sha256(raw)]
    assert rows[0].data["staff"]["name"] == "古賀 雅美"
    assert rows[0].ip and rows[0].user_agent
    # a row copied from the table is no cookie
    client.cookies.clear()
    client.cookies.set(COOKIE, rows[0].id_hash)
    assert refused(client)


def test_a_cookie_copied_before_logout_is_dead_after_it(
    client: Any, make_staff: Callable[..., int]
) -> None:
    make_staff("koga", extension="201")
    login(client, "koga")
    assert client.get("/customers").status_code == 200
    copied = dict(client.cookies)
    r = client.post("/logout", data={"csrf_token": csrf_of(client)}, follow_redirects=False)
    assert r.status_code == 303
    switch(client, copied)
    assert refused(client)
    assert ws_refused(client)


def test_log_out_ends_the_sessions_on_every_pc(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    make_staff("koga", extension="201")
    make_staff("yamada", extension="202")
    login(client, "koga")
    first_pc = dict(client.cookies)
    client.cookies.clear()
    login(client, "koga")
    second_pc = dict(client.cookies)
    client.cookies.clear()
    login(client, "yamada")
    yamada = dict(client.cookies)
    switch(client, second_pc)
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    switch(client, first_pc)
    assert refused(client)
    switch(client, yamada)  # someone else's session is not touched
    assert client.get("/customers").status_code == 200
    assert "logout" in [a for a, *_ in audit_actions(database_url)]


def test_log_in_gives_a_new_session_id(client: Any, make_staff: Callable[..., int]) -> None:
    make_staff("koga")
    csrf_of(client)  # the log-in page: an anonymous session for its CSRF token
    before = client.cookies.get(COOKIE)
    assert before
    login(client, "koga")
    after = client.cookies.get(COOKIE)
    assert after and after != before
    client.cookies.clear()
    client.cookies.set(COOKIE, before)  # a fixed id planted before log-in gives nothing
    assert refused(client)


def test_anonymous_sessions_are_made_only_when_needed_and_expire(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    assert client.get("/healthz").text == "ok"
    client.get("/static/css/app.css")
    assert session_rows(database_url) == []
    assert COOKIE not in client.cookies
    csrf_of(client)
    [anon] = session_rows(database_url)
    assert anon.staff_id is None and "csrf" in anon.data
    assert (anon.expires_at - anon.created_at).total_seconds() <= 2 * 3600
    # the same visitor does not make a row per page
    csrf_of(client)
    csrf_of(client)
    assert len(session_rows(database_url)) == 1


def test_expired_sessions_are_cleaned_at_log_in(
    settings: Settings, tmp_path: Path, make_staff: Callable[..., int], database_url: str
) -> None:
    settings.server.session_idle_s = 1
    make_staff("koga")
    with app_client(settings, tmp_path) as client:
        csrf_of(client)
        client.cookies.clear()
        csrf_of(client)
        assert len(session_rows(database_url)) == 2
        time.sleep(1.2)
        client.cookies.clear()
        login(client, "koga")
        rows = session_rows(database_url)
        assert [r.staff_id is not None for r in rows] == [True]


def test_expired_sessions_are_purged_without_a_log_in(
    settings: Settings,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flood of cookie-less visits of the log-in page makes rows, and nobody logs in: they
    are deleted once expired, after a response, at most once every 10 minutes per process."""
    import app.auth.sessions as sessions

    settings.server.session_idle_s = 1
    with app_client(settings, tmp_path) as client:
        for _ in range(5):
            client.cookies.clear()
            csrf_of(client)  # the first response purged (nothing yet): the next is 10 min away
        assert len(session_rows(database_url)) == 5
        time.sleep(1.2)
        client.cookies.clear()
        csrf_of(client)
        assert len(session_rows(database_url)) == 6  # not due for 10 minutes
    monkeypatch.setattr(sessions, "PURGE_EVERY_S", 0.0)
    time.sleep(1.2)
    with app_client(settings, tmp_path) as client:  # a new process purges at once
        client.cookies.clear()
        csrf_of(client)
        rows = session_rows(database_url)
        assert len(rows) == 1 and rows[0].staff_id is None
        time.sleep(1.2)
        client.get("/healthz")  # no session path: nothing done
        assert len(session_rows(database_url)) == 1
        client.cookies.clear()
        client.get("/login")  # due every time now (PURGE_EVERY_S 0)
        assert len(session_rows(database_url)) == 1


def test_idle_timeout(settings: Settings, tmp_path: Path, make_staff: Callable[..., int]) -> None:
    settings.server.session_idle_s = 3
    make_staff("koga")
    with app_client(settings, tmp_path) as client:
        login(client, "koga")
        for _ in range(8):  # 4 s of work keeps it open: the visit is noted as it goes
            time.sleep(0.5)
            assert client.get("/customers", follow_redirects=False).status_code == 200
        time.sleep(3.3)  # then 3 s without a request end it
        assert refused(client)
        assert ws_refused(client)


def test_absolute_timeout(
    settings: Settings, tmp_path: Path, make_staff: Callable[..., int]
) -> None:
    settings.server.session_max_age_s = 4
    make_staff("koga")
    with app_client(settings, tmp_path) as client:
        started = time.monotonic()
        login(client, "koga")
        cookie = client.cookies.get(COOKIE)
        assert cookie
        # Busy all along (with a margin for a loaded machine) ...
        while time.monotonic() < started + 2:
            assert client.get("/customers", follow_redirects=False).status_code == 200
            time.sleep(0.3)
        time.sleep(max(0.0, started + 4.5 - time.monotonic()))
        assert refused(client)  # ... and still over after 4 s


@pytest.fixture
def office(client: Any, make_staff: Callable[..., int]) -> Any:
    make_staff("boss", role="admin", name="管理 太郎")
    make_staff("office", role="backoffice", name="事務 花子")
    make_staff("koga", name="古賀 雅美", extension="201")
    return client


def _staff_form(row: Any, **extra: str) -> dict[str, str]:
    return {
        "login": row.login,
        "name": row.name,
        "role": row.role,
        "extension": row.extension,
        "line": row.line,
        "active": "1" if row.active else "",
        **extra,
    }


def test_an_admins_password_reset_ends_the_old_session(office: Any, database_url: str) -> None:
    login(office, "koga")
    koga = dict(office.cookies)
    office.cookies.clear()
    login(office, "boss")
    row = staff_row(database_url, "koga")
    r = post(office, f"/masters/staff/{row.id}", _staff_form(row, password="new-pass-123"))
    assert r.status_code == 303
    switch(office, koga)
    assert refused(office)
    assert ws_refused(office)
    actions = audit_actions(database_url)
    boss = staff_row(database_url, "boss")
    assert ("password_reset", boss.id, row.id, None) in actions


def test_a_role_change_or_retirement_ends_the_sessions(office: Any, database_url: str) -> None:
    login(office, "koga")
    koga = dict(office.cookies)
    office.cookies.clear()
    login(office, "boss")  # only an administrator changes a role
    staff = dict(office.cookies)
    row = staff_row(database_url, "koga")
    r = post(office, f"/masters/staff/{row.id}", _staff_form(row, role="supervisor"))
    assert r.status_code == 303
    switch(office, koga)
    assert refused(office)
    # a change of name only leaves the sessions alone
    login(office, "koga")
    koga = dict(office.cookies)
    switch(office, staff)
    row = staff_row(database_url, "koga")
    assert (
        post(office, f"/masters/staff/{row.id}", _staff_form(row, name="古賀 まさみ")).status_code
        == 303
    )
    switch(office, koga)
    assert office.get("/customers", follow_redirects=False).status_code == 200
    switch(office, staff)
    assert post(office, f"/masters/staff/{row.id}/active", {"active": "0"}).status_code == 303
    switch(office, koga)
    assert refused(office)


def test_a_retirement_by_csv_ends_the_sessions(office: Any, database_url: str) -> None:
    from tests.masters.test_master_csv import apply_form, upload

    login(office, "koga")
    koga = dict(office.cookies)
    office.cookies.clear()
    login(office, "office")
    r = upload(office, "staff", "ログインID,有効\nkoga,0\n".encode())
    assert r.status_code == 200
    assert post(office, "/masters/staff/import/apply", apply_form(r.text)).status_code == 303
    switch(office, koga)
    assert refused(office)


def test_back_office_cannot_set_a_password(office: Any, database_url: str) -> None:
    login(office, "office")
    row = staff_row(database_url, "koga")
    page = office.get(f"/masters/staff/{row.id}")
    assert 'name="password"' not in page.text
    r = post(office, f"/masters/staff/{row.id}", _staff_form(row, password="taken-over-1"))
    assert r.status_code == 422
    assert error_of(r.text, "password") == "パスワードの設定・再設定は管理者だけができます。"
    from tests.masters.test_master_csv import upload

    r = upload(office, "staff", "ログインID,パスワード\nkoga,taken-over-1\n".encode())
    assert r.status_code == 422 and "パスワードの設定・再設定は管理者だけができます。" in r.text
    office.cookies.clear()
    assert login(office, "koga", "taken-over-1").status_code == 400
    assert login(office, "koga").status_code == 303  # the old password still opens it
    assert staff_row(database_url, "koga").password_hash == row.password_hash
