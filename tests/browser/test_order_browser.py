"""Browser: an operator on the phone enters an order with the keyboard only, then re-orders."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from app.db import make_engine, make_sessionmaker, transaction
from app.orders.models import Order, OrderLine
from tests.browser.pages import log_in, wait_focus
from tests.conftest import run_async
from tests.factories import add_customer, add_masters

pytestmark = pytest.mark.browser


def stored_orders(url: str) -> list[tuple[str, list[tuple[str, int, int | None]]]]:
    async def go() -> list[tuple[str, list[tuple[str, int, int | None]]]]:
        engine = make_engine(url)
        try:
            async with transaction(make_sessionmaker(engine)) as s:
                out = []
                for order in (await s.scalars(select(Order).order_by(Order.id))).all():
                    lines = await s.scalars(
                        select(OrderLine)
                        .where(OrderLine.order_id == order.id)
                        .order_by(OrderLine.position)
                    )
                    out.append(
                        (
                            order.number,
                            [(x.product_code, x.quantity, x.parent_position) for x in lines],
                        )
                    )
                return out
        finally:
            await engine.dispose()

    result: list[tuple[str, list[tuple[str, int, int | None]]]] = run_async(go())
    return result


def test_order_by_keyboard_then_reorder(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    add_masters(database_url)
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("koga", name="古賀 雅美", extension="201")
    server = live_server_factory()
    page = new_page()
    log_in(page, server.url, "koga")
    page.goto(f"{server.url}/customers/{cid}")
    page.locator(".monitor-head .customer-name", has_text="佐賀 太郎").wait_for()

    # F7: 受注入力, the cursor in the first 商品コード
    page.keyboard.press("F7")
    wait_focus(page, "line-0-code")
    keys = page.keyboard

    # a code, Enter, the quantity, Enter …
    keys.type("10001")
    keys.press("Enter")
    wait_focus(page, "line-0-qty")
    keys.type("2")
    keys.press("Enter")
    wait_focus(page, "line-1-code")
    # … and a product by its name: the suggestion list, Enter takes the first
    keys.type("サポートテ")
    page.locator("#order-suggest li", has_text="健康サポートテープ").first.wait_for()
    keys.press("ArrowDown")
    keys.press("ArrowUp")
    keys.press("Enter")
    wait_focus(page, "line-1-qty")
    assert page.input_value("#line-1-code") == "20002"
    keys.type("1")
    keys.press("Enter")
    wait_focus(page, "line-2-code")
    entry = page.locator("#order-entry")
    entry.locator(".line-name", has_text="健康サポートテープ").wait_for()
    entry.locator(".order-companion", has_text="取扱説明書").wait_for()  # 同梱, added for 20002
    page.wait_for_function(
        "() => document.getElementById('line-0-qty').value === '2'"
        " && /19,700円/.test(document.getElementById('order-subtotal').textContent)"
    )

    # F1 入力確認 → F1 はい
    keys.press("F1")
    page.get_by_text("この内容で受注しますか？").wait_for()
    confirm = page.locator("#order-confirm")
    assert (
        "健康トニック" in confirm.inner_text()
        and "取扱説明書（サポートテープ）" in confirm.inner_text()
    )
    wait_focus(page, "order-f1")
    page.locator('#order-entry[data-armed="1"]').wait_for()  # a doubled key does not count
    keys.press("F1")
    number = page.locator("#order-number")
    number.wait_for()
    assert re.fullmatch(r"\d{8}-\d{7}", number.inner_text())
    assert "を登録しました" in page.locator(".order-done").inner_text()
    [(stored, lines)] = stored_orders(database_url)
    assert stored == number.inner_text()
    assert lines == [("10001", 2, None), ("20002", 1, None), ("99001", 1, 1)]

    # Enter walks through the form; Ctrl+Delete drops a line; Enter on the last field is
    # 入力確認 and Esc (いいえ) brings the form back as it was
    keys.press("F1")  # 続けて受注入力
    wait_focus(page, "line-0-code")
    keys.type("40001")
    keys.press("Enter")
    wait_focus(page, "line-0-qty")
    keys.press("Enter")
    wait_focus(page, "line-1-code")
    keys.type("50001")
    keys.press("Enter")
    wait_focus(page, "line-1-qty")
    entry.locator(".line-name", has_text="ごぼう茶").wait_for()
    keys.press("Control+Delete")
    page.wait_for_function(
        "() => !document.querySelector('#order-entry').textContent.includes('ごぼう茶')"
    )
    wait_focus(page, "line-1-code")
    keys.press("Enter")  # an empty line: on to 伝票区分
    wait_focus(page, "order-slip-normal")
    for _ in range(20):  # one field after another, then 入力確認
        here = page.evaluate("() => document.activeElement.id")
        keys.press("Enter")
        page.wait_for_function(
            "here => document.getElementById('order-confirm')"
            " || document.activeElement.id !== here",
            arg=here,
        )
        if page.locator("#order-confirm").count():
            break
    page.get_by_text("この内容で受注しますか？").wait_for()
    assert "グルコサミン" in page.locator("#order-confirm").inner_text()
    keys.press("Escape")
    wait_focus(page, "line-0-code")
    assert page.input_value("#line-0-code") == "40001"
    assert page.input_value("#line-1-code") == ""
    assert len(stored_orders(database_url)) == 1

    # 再注文 from the first order: a question, はい (Enter), the form prefilled
    order_id = _order_id(database_url, stored)
    # (a whole page: the question is held back a moment there too, so a doubled key that
    # opened it does not answer it)
    page.goto(f"{server.url}/customers/{cid}/order?reorder={order_id}")
    page.get_by_text("受注入力を行いますか？").wait_for()
    wait_focus(page, "order-f1")
    page.locator('#order-entry[data-armed="1"]').wait_for()
    keys.press("Enter")
    wait_focus(page, "line-2-code")
    assert page.input_value("#line-0-code") == "10001"
    assert page.input_value("#line-0-qty") == "2"
    assert page.input_value("#line-1-code") == "20002"
    assert page.input_value("#line-1-qty") == "1"
    entry.locator(".order-companion", has_text="取扱説明書").wait_for()


def _order_id(url: str, number: str) -> int:
    async def go() -> int:
        engine = make_engine(url)
        try:
            async with transaction(make_sessionmaker(engine)) as s:
                return int(await s.scalar(select(Order.id).where(Order.number == number)) or 0)
        finally:
            await engine.dispose()

    return int(run_async(go()))
