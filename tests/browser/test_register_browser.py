"""Browser: 新規顧客登録 from the search screen stops at the customers it may duplicate (M6)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.pages import log_in
from tests.factories import add_customer

pytestmark = [pytest.mark.browser]


def test_register_with_an_existing_phone_warns_then_registers_as_another_person(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    taro = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("koga", name="古賀 雅美", extension="201")
    server = live_server_factory()
    page = new_page()
    log_in(page, server.url, "koga")

    # The caller is not 佐賀 太郎 but shares his number: search, then 新規顧客登録 from there.
    page.goto(server.url + "/customers")
    page.fill("#customer-q", "0952-32-6611")
    page.press("#customer-q", "Enter")
    page.locator(".customer-search table.grid td", has_text="佐賀 太郎").wait_for()
    page.click("#customer-new")
    page.wait_for_url("**/customers/new?q=*")
    assert page.locator("#new-phone").input_value() == "0952-32-6611"
    assert page.evaluate("document.activeElement.id") == "new-name"  # the cursor is there
    page.keyboard.type("佐賀 次郎")
    page.keyboard.press("Tab")
    page.keyboard.type("さが じろう")
    page.keyboard.press("F1")  # 登録

    # Not saved: the existing customer is shown with the reason, and the choice is explicit.
    warning = page.locator(".dup-warning")
    warning.wait_for()
    assert "重複している可能性があります" in warning.inner_text()
    row = warning.locator("tr.dup-candidate", has_text="佐賀 太郎")
    assert "同じ電話番号" in row.inner_text()
    assert row.locator("a.choose").get_attribute("href") == f"/customers/{taro}"
    assert page.locator("#new-name").input_value() == "佐賀 次郎"  # what was typed is kept
    page.get_by_role("button", name="別人として新規登録").click()

    page.wait_for_url(re.compile(r"/customers/\d+$"))
    new_id = int(page.url.rsplit("/", 1)[1])
    assert new_id != taro
    assert page.locator(".monitor-head .customer-name").inner_text() == "佐賀 次郎"
    assert "0952-32-6611" in page.locator(".monitor-head .phones").inner_text()

    # Both are now found by that number.
    page.goto(server.url + "/customers?q=0952326611")
    names = page.locator(".customer-search table.grid tbody tr").all_inner_texts()
    assert len(names) == 2 and any("佐賀 次郎" in n for n in names)
