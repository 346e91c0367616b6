"""Browser: taking over an extension someone else holds, and the password change an admin's
reset forces, done by keyboard as an operator would."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.auth.test_live_revocation import Browser
from tests.browser.pages import log_in

pytestmark = pytest.mark.browser


def test_an_extension_held_by_another_is_taken_over_by_keyboard(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
) -> None:
    make_staff("koga", name="古賀 雅美", extension="201")
    make_staff("yamaguchi", name="山口 由美", extension="202", allowed_extensions="*")
    server = live_server_factory()
    log_in(new_page(), server.url, "koga")
    page = new_page()
    page.goto(server.url + "/login")
    page.fill("#login", "yamaguchi")
    page.fill("#password", "password123")
    page.fill("#extension", "201")
    page.press("#extension", "Enter")
    error = page.locator("#extension-error")
    error.wait_for()
    assert "古賀 雅美 さんがログイン中に使っています" in error.inner_text()
    # The form keeps what was typed; the box is ticked with Space and Enter logs in.
    page.fill("#password", "password123")
    page.focus("#takeover")
    page.keyboard.press("Space")
    assert page.is_checked("#takeover")
    page.press("#password", "Enter")
    page.wait_for_url(server.url + "/")
    assert "201" in page.locator("header").inner_text()


def test_a_reset_password_is_changed_before_anything_else(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
) -> None:
    make_staff("boss", role="admin")
    koga = make_staff("koga", name="古賀 雅美", extension="201")
    server = live_server_factory()
    admin = Browser(server.url)
    try:
        admin.login("boss")
        form = {"login": "koga", "name": "古賀 雅美", "role": "operator", "extension": "201"}
        r = admin.post(f"/masters/staff/{koga}", {**form, "active": "1", "password": "temp-pass-1"})
        assert r.status_code == 303, r.text
    finally:
        admin.close()
    page = new_page()
    page.goto(server.url + "/customers")
    page.fill("#login", "koga")
    page.fill("#password", "temp-pass-1")
    page.press("#password", "Enter")
    page.wait_for_url(lambda url: "/password?next=" in url and "customers" in url)
    assert "管理者がパスワードを再設定しました" in page.inner_text("body")
    page.goto(server.url + "/orders")  # any page leads back here
    page.wait_for_url("**/password")
    page.fill("#current", "temp-pass-1")
    page.fill("#new", "my-own-pass-9")
    page.fill("#again", "my-own-pass-8")
    page.press("#again", "Enter")
    assert "同じように2回入力してください" in page.locator("#again-error").inner_text()
    page.fill("#current", "temp-pass-1")
    page.fill("#new", "my-own-pass-9")
    page.fill("#again", "my-own-pass-9")
    page.press("#again", "Enter")
    page.get_by_text("パスワードを変更しました").wait_for()
    page.goto(server.url + "/customers")
    page.wait_for_url(server.url + "/customers")
