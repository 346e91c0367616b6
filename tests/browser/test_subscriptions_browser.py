"""Browser: a subscription registered in the monitor's 定期情報 (with the terms read before
確定) appears in 定期発送一覧 for its date, 実行 turns it into an order, and a 解約 then reads
out that delivery as still coming."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from app.masters.models import CancelReason
from app.web import JST
from tests.browser.pages import log_in, wait_focus
from tests.factories import add_customer, add_masters
from tests.orders.test_history import in_db

pytestmark = pytest.mark.browser


def test_subscription_from_the_monitor_is_shipped_by_the_run(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    add_masters(database_url)
    cid = add_customer(
        database_url, "北田 君子", "キタダ キミコ", "0985-22-1111", prefecture="宮崎県"
    )
    make_staff("matsuo", role="supervisor", name="松尾 健一")
    server = live_server_factory({"YEBISU_REDIS_URL": ""})
    page = new_page()
    log_in(page, server.url, "matsuo")
    today = dt.datetime.now(JST).date()

    page.goto(f"{server.url}/customers/{cid}/subscriptions")
    page.click("#subscription-new")
    wait_focus(page, "sub-start-month")
    assert page.input_value("#sub-start-month") == f"{today:%Y/%m}"
    # Seen once in CI under load: the day's digit landed in 開始月 (a late autofocus?). The
    # fields are typed again until they hold what was typed; the flow is what is tested here.
    for _ in range(3):
        page.fill("#sub-start-month", f"{today:%Y/%m}")
        page.fill("#sub-day", str(today.day))
        page.fill("#sub-code-0", "10001")
        page.fill("#sub-qty-0", "2")
        if page.input_value("#sub-start-month") == f"{today:%Y/%m}" and page.input_value(
            "#sub-day"
        ) == str(today.day):
            break
        page.wait_for_timeout(200)
    page.click("#subscription-confirm")

    terms = page.locator(".terms", has_text="お客様へのご説明")
    terms.wait_for()
    assert "毎月" in terms.inner_text()
    assert page.inner_text("#subscription-next") == f"{today:%Y/%m/%d}"
    page.click("#subscription-save")
    page.locator("#subscription-notice", has_text="を登録しました").wait_for()
    row = page.locator("#subscriptions tbody tr").first
    assert "10001 健康トニック 2個" in row.inner_text()

    page.goto(f"{server.url}/subscriptions?date={today:%Y/%m/%d}")
    pending = page.locator("#shipments-table tbody tr", has_text="北田 君子")
    pending.wait_for()
    assert "未作成" in pending.inner_text()

    page.click("#shipments-run")
    made = page.locator("#shipments-table tbody tr", has_text="作成済")
    made.wait_for(timeout=20_000)
    text = made.inner_text()
    assert "北田 君子" in text and "10001 健康トニック" in text
    assert page.locator(".job-progress.job-done").count() == 1

    # 解約 the next day's way: the order just made is read out as still coming, then 確定.
    async def reason(s: Any) -> None:
        s.add(CancelReason(code="C01", name="飲みきれない", kind="cancel", sort_order=1))

    in_db(database_url, reason)
    page.goto(f"{server.url}/customers/{cid}/subscriptions")
    page.click("#subscriptions a.to-change")
    page.select_option("#chg-reason", label="飲みきれない")
    page.click("#chg-cancel-submit")
    terms = page.locator("#subscription-cancel-terms")
    terms.wait_for()
    said = terms.inner_text()
    assert "この解約では止まりません" in said and "受注番号" in said
    assert "以降のお届けはございません" in said
    page.click("#subscription-change-save")
    page.locator("#subscription-notice", has_text="解約").wait_for()
    assert "解約" in page.locator("#subscriptions tbody tr").first.inner_text()
