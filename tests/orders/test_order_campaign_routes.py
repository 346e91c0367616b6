"""受注入力 with campaigns (O3, R4): the draft, 入力確認 and the registered order show each
applied campaign by name with its effect; 定期 shows the terms to read; a registered order
tells the supervisors' boards."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from app.events import OrderPlaced
from app.masters.models import Campaign, Product
from app.web import JST
from tests.conftest import login
from tests.factories import add_customer, add_masters
from tests.orders.test_order_routes import db_run, form_of, post, with_lines


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def world(client: Any, database_url: str, make_staff: Callable[..., int]) -> dict[str, Any]:
    add_masters(database_url)
    taro = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("koga", name="古賀 雅美", extension="201")
    login(client, "koga")
    today = dt.datetime.now(JST).date()

    async def campaigns(s: Any) -> None:
        ids = {p.code: p.id for p in await s.scalars(select(Product))}
        s.add_all(
            [
                Campaign(
                    code="FS",
                    name="春の送料無料",
                    kind="free_shipping",
                    starts_on=today - dt.timedelta(days=1),
                    ends_on=today + dt.timedelta(days=30),
                ),
                Campaign(
                    code="GIFT",
                    name="サポーターで手ぬぐい",
                    kind="present",
                    product_id=ids["20003"],
                    present_product_id=ids["90002"],
                    present_quantity=1,
                ),
                Campaign(
                    code="OLD",
                    name="終わった新規値引き",
                    kind="new_customer",
                    discount_amount=500,
                    ends_on=today - dt.timedelta(days=1),
                ),
            ]
        )

    db_run(database_url, campaigns)
    return {"taro": taro}


def test_draft_confirm_and_done_show_the_campaigns(client: Any, world: dict[str, Any]) -> None:
    told: list[OrderPlaced] = []
    client.app.state.events.subscribe(OrderPlaced, told.append)
    url = f"/customers/{world['taro']}/order"
    fields = with_lines(form_of(client.get(url).text), ("20003", "1"))
    r = post(client, url + "/form", fields)
    text = text_of(r.text)
    assert "適用キャンペーン" in text
    assert "春の送料無料 送料無料 −650円" in text
    assert "サポーターで手ぬぐい 同梱: プレゼント オリジナル手ぬぐい ×1" in text
    assert "終わった新規値引き" not in text
    assert 'id="order-shipping">0円' in r.text
    rows = re.findall(r'<tr class="order-child order-(\w+)">(.*?)</tr>', r.text, re.S)
    assert [(k, text_of(b).split()[:2]) for k, b in rows] == [("present", ["90002", "プレゼント"])]

    r = post(client, url + "/confirm", form_of(r.text))
    assert r.status_code == 200 and "この内容で受注しますか？" in r.text
    text = text_of(r.text)
    assert "春の送料無料 送料無料 −650円" in text and "サポーターで手ぬぐい" in text
    assert "お客様へのご説明" not in text  # 通常: no subscription terms

    r = post(client, url, form_of(r.text))
    assert r.status_code == 200 and "を登録しました" in r.text
    text = text_of(r.text)
    assert "春の送料無料 送料無料 −650円" in text
    assert "プレゼント オリジナル手ぬぐい プレゼント" in text
    assert [e.customer_id for e in told] == [world["taro"]]  # after the commit, once
    # The order keeps its campaigns: 購入履歴 names them with the order.
    listed = text_of(client.get(f"/customers/{world['taro']}/purchases").text)
    assert "キャンペーン: 春の送料無料（送料無料）" in listed
    assert "キャンペーン: サポーターで手ぬぐい（同梱: プレゼント オリジナル手ぬぐい ×1）" in listed


def test_subscription_confirm_shows_the_terms_to_read(client: Any, world: dict[str, Any]) -> None:
    url = f"/customers/{world['taro']}/order"
    fields = with_lines(form_of(client.get(url).text), ("10001", "1"))
    fields["slip_type"] = ["subscription"]
    r = post(client, url + "/form", fields)
    r = post(client, url + "/confirm", form_of(r.text))
    assert r.status_code == 200, text_of(r.text)
    text = text_of(r.text)
    assert "お客様へのご説明（読み上げてください）" in text
    assert "お届け間隔: 毎月" in text
    # later deliveries: 6,900 + 650 + 330 + tax (8% of 6,900, 10% of 980) without the
    # free-shipping campaign of this order
    later = 6900 + 650 + 330 + 6900 * 8 // 100 + 980 // 10
    assert f"1回あたり {later:,}円（税込・送料込）" in text
    assert 'id="order-shipping">0円' in r.text  # this order is still free of shipping


def test_ship_origin_master_gives_the_choice_of_origin(
    client: Any, world: dict[str, Any], database_url: str
) -> None:
    from app.masters.models import ShipOrigin
    from app.orders.models import Order

    async def add(s: Any) -> None:
        s.add_all(
            [
                ShipOrigin(code="1", name="福岡県", sort_order=1),
                ShipOrigin(code="2", name="埼玉県", sort_order=2),
                ShipOrigin(code="3", name="閉鎖倉庫", sort_order=3, active=False),
            ]
        )

    db_run(database_url, add)
    url = f"/customers/{world['taro']}/order"
    page = client.get(url).text
    fields = form_of(page)
    assert fields["origin"] == ["1"]  # the first by 表示順
    assert "2 埼玉県" in page and "閉鎖倉庫" not in page
    fields = with_lines(fields, ("20003", "1"))
    fields["origin"] = ["2"]
    r = post(client, url + "/confirm", fields)
    assert r.status_code == 200 and "<dt>発送元地区</dt><dd>埼玉県</dd>" in r.text
    r = post(client, url, form_of(r.text))
    assert r.status_code == 200

    async def stored(s: Any) -> list[str]:
        return [o.origin_region for o in await s.scalars(select(Order))]

    assert db_run(database_url, stored) == ["埼玉県"]
    fields["origin"] = ["3"]
    r = post(client, url + "/confirm", fields)
    assert r.status_code == 400 and "発送元地区を選んでください。" in r.text
