"""Browser: the 顧客詳細 tab worked from the keyboard — add a phone, look up a postcode, F1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.pages import focused, log_in
from tests.factories import add_customer

pytestmark = [pytest.mark.browser]


def tab_to(page: Any, matches: Callable[[dict[str, str]], bool], limit: int = 40) -> None:
    for _ in range(limit):
        if matches(focused(page)):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"never reached; focus is on {focused(page)}")


def test_add_a_phone_by_keyboard_look_up_the_postcode_and_save_with_f1(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    cid = add_customer(
        database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611", prefecture="", city="", street=""
    )
    make_staff("koga", name="古賀 雅美", extension="201")
    server = live_server_factory()
    page = new_page()
    log_in(page, server.url, "koga")
    page.goto(f"{server.url}/customers/{cid}")

    # The tab opens with the first phone focused.
    page.wait_for_function("() => document.activeElement.name === 'phone_number'")
    assert focused(page)["value"] == "0952-32-6611"

    # Keyboard only: Tab to 「電話番号を追加」, Enter, type the number, choose 携帯.
    tab_to(page, lambda f: "電話番号を追加" in f["text"])
    page.keyboard.press("Enter")
    page.locator("#phone-rows li").nth(1).wait_for()
    page.wait_for_function(
        "() => document.activeElement.name === 'phone_number'"
        " && document.activeElement.value === ''"
    )
    page.keyboard.type("090-1234-5678")
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "phone_kind"
    page.keyboard.press("ArrowDown")  # 自宅 → 携帯
    page.keyboard.press("Tab")
    page.keyboard.type("本人")
    assert page.locator("#phone-rows li").nth(1).locator("select").input_value() == "mobile"

    # A third row added and removed again, by keyboard: focus returns to 追加.
    tab_to(page, lambda f: "電話番号を追加" in f["text"])
    page.keyboard.press("Enter")
    page.locator("#phone-rows li").nth(2).wait_for()
    page.wait_for_function("() => document.activeElement.name === 'phone_number'")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "削除"
    page.keyboard.press("Enter")
    assert page.locator("#phone-rows li").count() == 2
    assert "電話番号を追加" in focused(page)["text"]

    # 郵便番号 + Enter fills 県名・市町村名・番地; the cursor waits in 番地 for the number.
    lookups: list[str] = []
    page.on("request", lambda r: "/postcode?" in r.url and lookups.append(r.url))
    page.fill("#detail-postcode", "8400806")
    page.press("#detail-postcode", "Enter")
    page.wait_for_function("() => document.activeElement.id === 'detail-street'")
    assert page.locator("#detail-prefecture").input_value() == "佐賀県"
    assert page.locator("#detail-city").input_value() == "佐賀市"
    page.keyboard.type("3-2")
    assert page.locator("#detail-street").input_value() == "神園3-2"
    assert page.locator("#detail-postcode-msg").inner_text() == ""

    # An unknown postcode says so beside the field and keeps the address.
    page.fill("#detail-postcode", "0000000")
    page.press("#detail-postcode", "Enter")
    page.locator("#detail-postcode-msg", has_text="見つかりません").wait_for()
    assert page.locator("#detail-street").input_value() == "神園3-2"
    # one look-up per Enter: the cursor leaving the postcode for 番地 does not ask again
    assert ["postcode=8400806" in u for u in lookups] == [True, False], lookups
    # Leaving the field with Tab looks a changed postcode up too; what was typed is kept.
    page.fill("#detail-postcode", "840-0806")
    page.keyboard.press("Tab")
    page.locator("#detail-postcode-msg", has_text="見つかりません").wait_for(state="detached")
    assert page.locator("#detail-postcode-msg").inner_text() == ""
    assert len(lookups) == 3 and "postcode=840-0806" in lookups[2]
    assert page.locator("#detail-street").input_value() == "神園3-2"

    # F1 登録: saved, and the header shows the new phone.
    page.keyboard.press("F1")
    page.locator(".detail-notice", has_text="保存しました").wait_for()
    phones = page.locator("#monitor-head .phones").inner_text()
    assert "090-1234-5678" in phones and "0952-32-6611" in phones
    assert page.locator("#detail-street").input_value() == "神園3-2"
    # the change is in the history on the same tab
    history = page.locator("#detail-history").inner_text()
    assert "電話番号" in history and "古賀 雅美" in history


def test_bad_input_is_shown_beside_the_field_without_leaving_the_tab(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("koga", name="古賀 雅美")
    server = live_server_factory()
    page = new_page()
    log_in(page, server.url, "koga")
    page.goto(f"{server.url}/customers/{cid}")
    page.fill("#detail-birth", "令和30年1月1日")
    page.fill("#detail-memo", "入力途中のメモ")
    page.keyboard.press("F1")
    page.locator(".detail-errors").wait_for()
    assert "生年月日が未来の日付です。" in page.locator(".field.has-error").inner_text()
    # the field in error has the focus, what was typed is still there
    page.wait_for_function("() => document.activeElement.id === 'detail-birth'")
    assert page.locator("#detail-memo").input_value() == "入力途中のメモ"
    page.fill("#detail-birth", "S45.4.1")
    page.keyboard.press("F1")
    page.locator(".detail-notice", has_text="保存しました").wait_for()
    assert "昭和45年4月1日" in page.locator("#detail-birth-hint").inner_text()
    assert page.locator("#monitor-head .birth-month").inner_text() == "4"


def test_two_browsers_editing_the_same_customer(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("koga", name="古賀 雅美")
    make_staff("yamada", name="山田 花子")
    server = live_server_factory()
    koga, yamada = new_page(), new_page()
    log_in(koga, server.url, "koga")
    log_in(yamada, server.url, "yamada")
    for page in (koga, yamada):
        page.goto(f"{server.url}/customers/{cid}")
    yamada.fill("#detail-name", "佐賀 太一")
    yamada.fill("#detail-purpose", "改名")
    yamada.keyboard.press("F1")
    yamada.locator(".detail-notice", has_text="保存しました").wait_for()

    koga.fill("#detail-memo", "折り返し希望")
    koga.keyboard.press("F1")
    koga.locator(".detail-conflict", has_text="他のオペレータが先に更新しました").wait_for()
    rows = koga.locator(".conflict-table tbody tr")
    assert rows.count() == 2
    assert "佐賀 太一" in rows.nth(0).locator(".theirs").inner_text()
    assert "佐賀 太郎" in rows.nth(0).locator(".mine").inner_text()
    # his untouched name now shows 山田's; his memo is kept; F1 again saves on the new version
    assert koga.locator("#detail-name").input_value() == "佐賀 太一"
    assert koga.locator("#detail-memo").input_value() == "折り返し希望"
    koga.keyboard.press("F1")
    koga.locator(".detail-notice", has_text="保存しました").wait_for()
    assert koga.locator("#monitor-head .customer-name").inner_text() == "佐賀 太一"


def test_a_function_key_pressed_before_htmx_has_bound_the_tab_still_takes_the_htmx_path(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("koga", name="古賀 雅美", extension="201")
    server = live_server_factory()
    page = new_page()
    log_in(page, server.url, "koga")
    page.goto(f"{server.url}/customers/{cid}/responses")
    page.locator("#response-content").wait_for()
    # A slow machine: new content stays unbound for 600 ms after it appears.
    page.evaluate("htmx.config.defaultSettleDelay = 600; window.__samePage = true")

    page.keyboard.press("F2")  # 顧客詳細
    page.locator(".htmx-added #detail-save").wait_for()
    page.keyboard.press("F1")  # 登録, at once
    page.locator(".detail-notice", has_text="変更はありませんでした。").wait_for()
    # saved through htmx, inside the same page (a native form post would have reloaded it)
    assert page.evaluate("window.__samePage === true")
