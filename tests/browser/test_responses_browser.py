"""Browser: 対応履歴 by keyboard — F3, type 内容, the FAQ appears, insert it, F1 登録."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.pages import log_in
from tests.factories import add_customer, add_masters

pytestmark = pytest.mark.browser


def focused_id(page: Any) -> str:
    return str(page.evaluate("document.activeElement ? document.activeElement.id : ''"))


def test_response_with_faq_answer_entered_by_keyboard(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    add_masters(database_url)
    make_staff("koga", name="古賀 雅美", extension="201")
    server = live_server_factory()
    page = new_page()
    log_in(page, server.url, "koga")
    page.goto(f"{server.url}/customers/{cid}/actions")
    page.locator(".monitor-head .customer-name", has_text="佐賀 太郎").wait_for()

    # F3 opens 対応履歴; 内容 has the focus.
    page.keyboard.press("F3")
    page.wait_for_url(f"**/customers/{cid}/responses")
    page.wait_for_function(
        "document.activeElement && document.activeElement.id === 'response-content'"
    )

    page.keyboard.type("説明書")
    faq = page.locator("#faq-results .faq", has_text="健康サポートテープの貼り方を知りたい")
    faq.wait_for()

    # Tab reaches 挿入 of the first FAQ; Enter puts the model answer into 対応.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('faq-insert')")
    page.keyboard.press("Enter")
    assert focused_id(page) == "response-answer"
    answer = page.input_value("#response-answer")
    assert answer.startswith("肌を清潔にして水気をふき取り")
    page.keyboard.type("。説明書を郵送")

    # F1 登録: the list shows the entry, the form is blank again.
    page.keyboard.press("F1")
    page.locator("#response-entry .notice", has_text="対応履歴を登録しました。").wait_for()
    row = page.locator("#response-list tbody tr", has_text="説明書")
    row.wait_for()
    text = row.inner_text()
    assert "古賀 雅美" in text and "肌を清潔にして" in text and "説明書を郵送" in text
    assert page.input_value("#response-content") == ""
    assert page.input_value("#response-answer") == ""
    # htmx focuses the fresh form's autofocus field once the swap has settled
    page.wait_for_function(
        "document.activeElement && document.activeElement.id === 'response-content'"
    )

    # A bad 内容 keeps what was typed and says why, beside the field.
    page.keyboard.press("F1")
    page.locator("#response-content-error", has_text="内容を入力してください。").wait_for()
    assert page.locator("#response-list tbody tr").count() == 1

    # The filter survives a reload (hx-push-url) — once the refused form has settled.
    page.wait_for_function(
        "document.activeElement && document.activeElement.id === 'response-content'"
    )
    page.wait_for_load_state("networkidle")
    page.fill("#rf-from", "2015/01/01")
    assert page.input_value("#rf-from") == "2015/01/01"
    page.press("#rf-from", "Enter")
    page.wait_for_url("**from=2015%2F01%2F01**")
    page.reload()
    assert page.input_value("#rf-from") == "2015/01/01"
    assert page.locator("#response-list tbody tr", has_text="説明書を郵送").count() == 1
