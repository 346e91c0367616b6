"""Browser: a whole call in one screen, keyboard only — from the pop-up to the confirmed order,
then the order in 購入履歴 and 受注一覧, and a 再注文 from the history."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from app.config import Settings
from app.db import make_engine, make_sessionmaker, transaction
from app.responses.models import Action
from tests.browser.pages import focused, simulate, wait_focus
from tests.conftest import run_async
from tests.factories import add_customer, add_masters

pytestmark = pytest.mark.browser


def order_actions(url: str) -> list[tuple[int | None, int | None, int]]:
    async def go() -> list[tuple[int | None, int | None, int]]:
        engine = make_engine(url)
        try:
            async with transaction(make_sessionmaker(engine)) as s:
                rows = await s.execute(
                    select(Action.call_id, Action.order_id, Action.amount).where(
                        Action.kind == "order"
                    )
                )
                return [(a, b, c) for a, b, c in rows]
        finally:
            await engine.dispose()

    result: list[tuple[int | None, int | None, int]] = run_async(go())
    return result


def test_a_whole_call_from_pop_to_order_by_keyboard(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
    settings: Settings,
) -> None:
    add_masters(database_url)
    cid = add_customer(
        database_url,
        "佐賀 太郎",
        "サガ タロウ",
        "0952-32-6611",
        alert="耳が遠い方なので大きい声でお願いします",
        karte="右ひざの痛み",
    )
    make_staff("koga", name="古賀 雅美", extension="201")
    server = live_server_factory()
    page = new_page()
    page.goto(server.url + "/login")
    page.fill("#login", "koga")
    page.fill("#password", "password123")
    page.press("#password", "Enter")
    page.wait_for_url(server.url + "/")
    page.wait_for_selector("#presence select")
    keys = page.keyboard

    # The phone rings at extension 201: the pop shows the caller; Alt+Enter answers and opens
    # the monitor with the header over every tab.
    simulate(
        server.url, settings.server.secret_key, action="ring", number="0952326611", extension="201"
    )
    page.locator("#pop-area .pop .name", has_text="佐賀 太郎").wait_for()
    keys.press("Alt+Enter")
    page.wait_for_url(f"**/customers/{cid}?call=*")
    call_id = int(page.url.rsplit("call=", 1)[1])
    head = page.locator("#monitor-head")
    assert head.locator(".customer-name").inner_text() == "佐賀 太郎"
    assert "耳が遠い方なので大きい声でお願いします" in head.locator(".monitor-alert").inner_text()
    assert "右ひざの痛み" in head.locator(".karte").inner_text()

    # 顧客詳細: add a mobile phone with the keyboard, F1 登録; the header shows it.
    page.wait_for_function("() => document.activeElement.name === 'phone_number'")
    for _ in range(40):
        if "電話番号を追加" in focused(page)["text"]:
            break
        keys.press("Tab")
    keys.press("Enter")
    page.wait_for_function(
        "() => document.activeElement.name === 'phone_number'"
        " && document.activeElement.value === ''"
    )
    keys.type("090-1111-2222")
    keys.press("Tab")
    keys.press("ArrowDown")  # 携帯
    keys.press("F1")
    page.locator(".detail-notice", has_text="保存しました").wait_for()
    assert "090-1111-2222" in head.locator(".phones").inner_text()

    # F7 受注入力: two products by code, quantities, Enter between; F1 入力確認, F1 はい.
    keys.press("F7")
    wait_focus(page, "line-0-code")
    keys.type("10001")
    keys.press("Enter")
    wait_focus(page, "line-0-qty")
    keys.type("1")
    keys.press("Enter")
    wait_focus(page, "line-1-code")
    keys.type("20001")
    keys.press("Enter")
    wait_focus(page, "line-1-qty")
    keys.press("Control+a")
    keys.type("2")
    keys.press("Enter")
    wait_focus(page, "line-2-code")
    page.locator("#order-entry .line-name", has_text="健康テープ").wait_for()
    page.wait_for_function(
        "() => /18,500円/.test(document.getElementById('order-subtotal').textContent)"
    )
    keys.press("F1")
    page.get_by_text("この内容で受注しますか？").wait_for()
    page.locator('#order-entry[data-armed="1"]').wait_for()
    keys.press("F1")
    number_el = page.locator("#order-number")
    number_el.wait_for()
    number = number_el.inner_text()
    assert re.fullmatch(r"\d{8}-\d{7}", number)

    # The order is an action of this call, with its total.
    [(action_call, action_order, amount)] = order_actions(database_url)
    assert action_call == call_id and action_order and amount > 18_500

    # F6 購入履歴: the order's lines are there at once.
    keys.press("F6")
    purchases = page.locator(".purchases-tab")
    purchases.wait_for()
    text = purchases.inner_text()
    assert number in text and "健康トニック" in text and "健康テープ" in text

    # F8 受注一覧: today's orders, this customer's row highlighted.
    keys.press("F8")
    row = page.locator("tr.order-row.current", has_text=number)
    row.wait_for()
    assert "佐賀 太郎" in row.inner_text()

    # 再注文 from 購入履歴: F6, F1 (the newest order), the question, Enter → the form filled.
    keys.press("F6")
    page.locator(".purchases-tab").wait_for()
    keys.press("F1")
    page.get_by_text("受注入力を行いますか？").wait_for()
    wait_focus(page, "order-f1")
    # はい answers once the question has been shown a moment (a doubled key does not count).
    page.locator('#order-entry[data-view="reorder"][data-armed="1"]').wait_for()
    keys.press("Enter")
    wait_focus(page, "line-2-code")
    assert page.input_value("#line-0-code") == "10001"
    assert page.input_value("#line-1-code") == "20001"
    assert page.input_value("#line-1-qty") == "2"
