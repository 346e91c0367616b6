"""Browser: a demo operator logs in and sees the Japanese menu; F-keys work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_operator_logs_in_and_sees_japanese_menu(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
) -> None:
    make_staff("operator", name="古賀 雅美", password="operator123", extension="201")
    server = live_server_factory()
    page = new_page()
    page.goto(server.url + "/")
    assert "/login" in page.url
    page.fill("#login", "operator")
    page.fill("#password", "operator123")
    page.press("#password", "Enter")
    page.wait_for_url(server.url + "/")
    menu = page.locator("nav.menu")
    for label in ("顧客モニタ", "受注一覧", "長期放置顧客"):
        assert menu.get_by_text(label, exact=True).is_visible()
    assert page.locator(".who-name").inner_text() == "古賀 雅美"
    assert not menu.get_by_text("マスタ", exact=True).count()  # not an operator's section
    # F1 focuses the customer search on the top screen
    page.keyboard.press("F1")
    assert page.evaluate("document.activeElement.id") == "home-search"
    # the fkey bar shows F1..F10
    assert page.locator("#fkeys .fkey").count() == 10
    page.get_by_text("ログアウト").click()
    page.wait_for_url("**/login")
