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
        "() => document.activeElement && document.activeElement.id === 'response-content'"
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
        "() => document.activeElement && document.activeElement.id === 'response-content'"
    )

    # A bad 内容 keeps what was typed and says why, beside the field.
    page.keyboard.press("F1")
    page.locator("#response-content-error", has_text="内容を入力してください。").wait_for()
    assert page.locator("#response-list tbody tr").count() == 1

    # The filter survives a reload (hx-push-url) — once the refused form has settled.
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.id === 'response-content'"
    )
    page.wait_for_load_state("networkidle")
    page.fill("#rf-from", "2015/01/01")
    assert page.input_value("#rf-from") == "2015/01/01"
    page.press("#rf-from", "Enter")
    page.wait_for_url("**from=2015%2F01%2F01**")
    page.reload()
    assert page.input_value("#rf-from") == "2015/01/01"
    assert page.locator("#response-list tbody tr", has_text="説明書を郵送").count() == 1


def test_todays_responses_update_live_for_the_filter_on_screen(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    add_masters(database_url)
    make_staff("koga", name="古賀 雅美", extension="201")
    make_staff("leader", name="中島 由紀", role="supervisor")
    server = live_server_factory()

    # The supervisor watches today's クレーム.
    board = new_page()
    board.add_init_script(
        "document.addEventListener('htmx:wsOpen', () => { window.__wsOpen = true; });"
    )
    log_in(board, server.url, "leader")
    board.goto(f"{server.url}/responses/today?cat=クレーム")
    board.locator("#today-list", has_text="該当する対応履歴はありません。").wait_for()
    board.wait_for_function("() => window.__wsOpen === true")

    operator = new_page()
    log_in(operator, server.url, "koga")

    def respond(category: str, content: str) -> None:
        operator.goto(f"{server.url}/customers/{cid}/responses")
        operator.select_option("#response-category", category)
        operator.fill("#response-content", content)
        operator.keyboard.press("F1")
        operator.locator("#response-entry .notice", has_text="対応履歴を登録しました。").wait_for()

    # An inquiry is not a complaint: the list on the board stays empty.
    respond("問合せ", "届く日を知りたい")
    # A complaint appears on the board without a reload, after the inquiry was saved.
    respond("クレーム", "箱が潰れて届いた")
    row = board.locator("#today-list tbody tr", has_text="箱が潰れて届いた")
    row.wait_for()
    assert "古賀 雅美" in row.inner_text() and "佐賀 太郎" in row.inner_text()
    assert board.locator("#today-list tbody tr").count() == 1
    assert "届く日を知りたい" not in board.locator("#today-list").inner_text()
    assert board.input_value("#today-cat") == "クレーム"
