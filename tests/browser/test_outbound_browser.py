"""Browser, two contexts: a supervisor turns the dormant list into a work list for an operator;
the operator works through it in the customer monitor's outbound mode — 次の顧客 opens the
monitor with its banner, 発信 dials (simulator), the result is entered in the banner and the
next customer's monitor follows, until the list is done."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.pages import log_in
from tests.factories import add_customer
from tests.outbound.test_click_to_dial import _backdate

pytestmark = [pytest.mark.browser]


def test_an_operator_works_a_list_in_the_monitors_outbound_mode(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-26-8999", code="C001")
    add_customer(database_url, "北田 君子", "キタダ キミコ", "0985-22-1111", code="C002")
    koga = make_staff("koga", name="古賀 雅美", extension="201", line="main")
    make_staff("suzuki", name="鈴木 リーダー", role="supervisor", line="main")
    _backdate(database_url)
    server = live_server_factory()
    leader, op = new_page(), new_page()

    log_in(leader, server.url, "suzuki")
    leader.goto(server.url + "/dormant?days=30")
    leader.locator("#dormant-list tbody tr", has_text="佐賀 太郎").wait_for()
    leader.fill("#list-name", "休眠掘り起こし")
    leader.check(f"input[name=operators][value='{koga}']")
    leader.click("#make-list")
    leader.locator("tr", has_text="休眠掘り起こし").wait_for()

    log_in(op, server.url, "koga")
    op.goto(server.url + "/outbound")
    op.locator("tr", has_text="休眠掘り起こし").get_by_role("button", name="次の顧客").click()
    # The customer monitor itself, in outbound mode: the banner above the tabs.
    op.wait_for_url("**/customers/*?outbound=*")
    banner = op.locator("#outbound-banner")
    banner.locator("#outbound-result").wait_for()
    first = op.locator(".monitor").inner_text()
    assert "休眠掘り起こし" in banner.inner_text()
    assert "outbound=" in (op.get_attribute("#tab-purchases", "href") or "")
    banner.locator("button.dial").first.click()
    op.locator("#dial-status", has_text="発信中").wait_for()

    # 不在 without a date: the entry goes to the end of the list; on to the next customer.
    banner.get_by_label("不在", exact=True).check()
    banner.locator("#result-submit").click()
    op.wait_for_function(
        "t => !document.querySelector('.monitor').innerText.includes(t)",
        arg="佐賀 太郎" if "佐賀 太郎" in first else "北田 君子",
    )
    op.locator("#outbound-banner #outbound-result").wait_for()
    second = op.locator(".monitor").inner_text()
    assert ("佐賀 太郎" in first) != ("佐賀 太郎" in second)

    # A refused result stays in the banner with its message beside the field.
    op.fill("#callback-at", "あした")
    op.locator("#outbound-banner").get_by_label("再コール", exact=True).check()
    op.click("#result-submit")
    op.locator("#outbound-banner .error", has_text="YYYY/MM/DD HH:MM").wait_for()
    op.fill("#callback-at", "")
    op.locator("#outbound-banner").get_by_label("通話", exact=True).check()
    op.click("#result-submit")
    # Then the one tried before (不在) comes back.
    op.wait_for_function(
        "t => document.querySelector('.monitor') &&"
        " document.querySelector('.monitor').innerText.includes(t)",
        arg="佐賀 太郎" if "佐賀 太郎" in first else "北田 君子",
    )
    op.locator("#outbound-banner").get_by_label("通話", exact=True).check()
    op.click("#result-submit")
    op.locator(".notice", has_text="今かけられる顧客は残っていません").wait_for()
