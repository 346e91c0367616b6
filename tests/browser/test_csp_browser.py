"""Browser: the main screens under the Content-Security-Policy — nothing blocked (the
``new_page`` of tests/browser/conftest.py fails a test on any violation), the pop's × still
closes it, an htmx error shows a Japanese toast, an unknown URL the Japanese page in the frame.
And the watch itself: an inline handler is blocked and reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.config import Settings
from tests.browser.conftest import WATCH, csp_messages
from tests.browser.pages import log_in, simulate
from tests.factories import add_customer, add_masters

pytestmark = pytest.mark.browser


def test_an_inline_handler_is_blocked_and_reported(
    live_server_factory: Callable[..., Any], browser: Any
) -> None:
    server = live_server_factory()
    ctx = browser.new_context(locale="ja-JP")
    try:
        page = ctx.new_page()
        page.add_init_script(WATCH)
        seen: list[str] = []
        page.on("console", lambda msg: seen.append(msg.text))
        page.goto(server.url + "/login")
        page.evaluate(
            """() => {
              const b = document.createElement("div");
              b.innerHTML = '<button id="evil" onclick="window.__ran = 1">x</button>';
              document.body.appendChild(b);
            }"""
        )
        page.click("#evil")
        page.wait_for_timeout(300)
        assert page.evaluate("() => window.__ran") is None
        assert csp_messages(seen), seen
    finally:
        ctx.close()


def test_main_screens_run_under_the_policy(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
    settings: Settings,
) -> None:
    add_masters(database_url)
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("kanri", name="管理 一郎", role="admin", extension="201", line="main")
    server = live_server_factory()
    page = new_page()
    log_in(page, server.url, "kanri")

    # A pop, ended: × closes it (a delegated handler in pop.js, no onclick).
    call_id = simulate(
        server.url, settings.server.secret_key, action="ring", number="0952326611", extension="201"
    )
    pop = page.locator("#pop-area .pop")
    pop.locator(".name", has_text="佐賀 太郎").wait_for()
    pop.locator(".take").click()
    page.wait_for_url(f"**/customers/{cid}?call=*")
    pop.locator(".pop-timer").wait_for()
    simulate(server.url, settings.server.secret_key, action="hangup", call_id=call_id)
    pop.locator(".pop-close").click()
    pop.wait_for(state="detached")

    # The customer monitor and each of its tabs.
    tabs = page.locator("#monitor-tabs a")
    for i in range(tabs.count()):
        tab = tabs.nth(i)
        tab.click()
        page.wait_for_function(
            "id => document.getElementById(id).getAttribute('aria-selected') === 'true'",
            arg=tab.get_attribute("id"),
        )
        page.wait_for_load_state("networkidle")

    # 受注一覧: changing a select searches again (a custom trigger, no [filter] expression).
    page.goto(server.url + "/orders")
    page.select_option("#orders-slip", "normal")
    page.wait_for_url("**slip=normal**")

    for path, text in (
        ("/customers?q=佐賀", "佐賀 太郎"),
        ("/dormant", "長期放置顧客"),
        ("/outbound", "架電リスト"),
        ("/board", "ボード"),
        ("/masters", "マスタ"),
        ("/admin", "管理"),
    ):
        page.goto(server.url + path)
        page.locator("main", has_text=text).wait_for()
        page.wait_for_load_state("networkidle")

    # An unknown URL: the Japanese page inside the frame.
    page.goto(server.url + "/customers/abc")
    page.locator("main h1", has_text="ページが見つかりません").wait_for()
    assert page.locator("nav.menu").is_visible()
    # An htmx request that fails: a Japanese toast, the screen stays.
    page.goto(server.url + "/customers")
    page.evaluate("() => htmx.ajax('GET', '/customers/abc', {target: '#main'})")
    page.locator("#toasts .toast.error", has_text="ページが見つかりません").wait_for()
    assert page.locator("#customer-q").is_visible()
