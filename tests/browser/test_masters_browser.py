"""Browser: an administrator adds a product and a campaign in the masters; the operator's next
order shows the new product's price and the campaign."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from app.web import JST
from tests.browser.pages import log_in, wait_focus
from tests.factories import add_customer, add_masters

pytestmark = pytest.mark.browser


def test_admin_adds_product_and_campaign_operator_sees_them(
    live_server_factory: Callable[..., Any],
    new_page: Callable[[], Any],
    make_staff: Callable[..., int],
    database_url: str,
) -> None:
    add_masters(database_url)
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("boss", role="admin", name="管理 太郎")
    make_staff("koga", name="古賀 雅美", extension="201")
    server = live_server_factory()
    today = dt.datetime.now(JST).date()

    admin = new_page()
    log_in(admin, server.url, "boss")
    # 商品マスタ: a bad price first, then the product
    admin.goto(f"{server.url}/masters/products")
    admin.click("#master-new")
    wait_focus(admin, "f-code")
    admin.fill("#f-code", "60001")
    admin.fill("#f-name", "黒酢ドリンク")
    admin.fill("#f-category_id", "10")
    admin.fill("#f-price", "四千")
    admin.select_option("#f-tax_class", "reduced")
    admin.click("#master-save")
    admin.locator("#f-price-error", has_text="半角の整数").wait_for()
    wait_focus(admin, "f-price")
    admin.fill("#f-price", "4000")
    admin.click("#master-save")
    admin.locator("#master-notice", has_text="「黒酢ドリンク」を登録しました。").wait_for()
    admin.locator("#master-rows td", has_text="黒酢ドリンク").wait_for()

    # キャンペーン管理: free shipping from today
    admin.goto(f"{server.url}/masters/campaigns/new")
    wait_focus(admin, "f-code")
    admin.fill("#f-code", "KUROZU")
    admin.fill("#f-name", "黒酢発売記念 送料無料")
    admin.select_option("#f-kind", "free_shipping")
    admin.fill("#f-starts_on", f"{today:%Y/%m/%d}")
    admin.fill("#f-ends_on", f"{today + dt.timedelta(days=30):%Y/%m/%d}")
    admin.click("#master-save")
    admin.locator("#master-notice", has_text="「黒酢発売記念 送料無料」を登録しました。").wait_for()

    # the operator's next order
    op = new_page()
    log_in(op, server.url, "koga")
    op.goto(f"{server.url}/customers/{cid}/order")
    wait_focus(op, "line-0-code")
    op.keyboard.type("60001")
    op.keyboard.press("Enter")
    wait_focus(op, "line-0-qty")
    op.keyboard.type("2")
    op.keyboard.press("Enter")
    wait_focus(op, "line-1-code")
    op.locator(".line-name", has_text="黒酢ドリンク").wait_for()
    op.locator("#order-subtotal", has_text="8,000円").wait_for()
    op.locator("#order-shipping", has_text="0円").wait_for()
    op.locator("#order-campaigns", has_text="黒酢発売記念 送料無料").wait_for()
    assert "送料無料" in op.inner_text("#order-campaigns")
    op.keyboard.press("F1")
    op.locator(".order-confirm-title", has_text="入力確認").wait_for()
    op.locator("#order-confirm #order-campaigns", has_text="黒酢発売記念 送料無料").wait_for()
    op.locator("#order-confirm #order-total").wait_for()
    # 8,000 + COD 330 + tax (8% of 8,000 + 10% of 330)
    assert op.inner_text("#order-confirm #order-total") == f"{8000 + 330 + 640 + 33:,}円"
