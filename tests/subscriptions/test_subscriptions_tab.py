"""定期情報 in the customer monitor (S1 as far as showing it, S5): 定期申し込み状況 with its
labels and next delivery date, the 受注へ link, and 定期の配送履歴 with 何回目."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.dates import add_months
from app.subscriptions.models import Subscription, SubscriptionItem
from app.subscriptions.service import (
    day_label,
    interval_label,
    next_delivery,
    next_due,
    status_label,
)
from app.web import JST
from tests.conftest import login
from tests.factories import add_customer, add_masters
from tests.orders.test_history import in_db, make_order, masters, tables

D = dt.date


def test_interval_day_and_status_labels() -> None:
    assert interval_label("month", 1) == "毎月"
    assert interval_label("month", 2) == "2ヶ月ごと"
    assert interval_label("month", 3) == "3ヶ月ごと"
    assert interval_label("week", 1) == "毎週"
    assert interval_label("week", 2) == "2週ごと"
    assert day_label("month", 10) == "10日"
    assert day_label("month", 31) == "末日"
    assert day_label("week", 0, D(2015, 5, 13)) == "水曜日"
    assert day_label("week", 0, None) == "—"
    assert status_label("active") == "継続"
    assert status_label("paused", D(2015, 6, 30)) == "休止中（〜2015/06/30）"
    assert status_label("paused") == "休止中"
    assert status_label("cancelled") == "解約"


def test_due_dates_fall_to_the_months_last_day() -> None:
    assert add_months(D(2015, 1, 1), 1, 31) == D(2015, 2, 28)
    assert add_months(D(2016, 1, 1), 1, 30) == D(2016, 2, 29)
    assert add_months(D(2014, 12, 1), 1, 10) == D(2015, 1, 10)
    assert add_months(D(2014, 4, 1), 14, 31) == D(2015, 6, 30)
    every_2 = {"start_month": D(2014, 4, 1), "interval_unit": "month", "interval_n": 2}
    assert next_due(**every_2, day_of_month=31, on_or_after=D(2015, 5, 1)) == D(2015, 6, 30)
    assert next_due(**every_2, day_of_month=31, on_or_after=D(2015, 4, 30)) == D(2015, 4, 30)
    assert next_due(**every_2, day_of_month=31, on_or_after=D(2015, 2, 28)) == D(2015, 2, 28)
    assert next_due(**every_2, day_of_month=10, on_or_after=D(2013, 1, 1)) == D(2014, 4, 10)
    weekly = {"start_month": D(2015, 1, 5), "interval_unit": "week", "interval_n": 2}
    assert next_due(**weekly, day_of_month=0, on_or_after=D(2015, 1, 6)) == D(2015, 1, 19)
    assert next_due(**weekly, day_of_month=0, on_or_after=D(2015, 1, 5)) == D(2015, 1, 5)


def test_next_delivery_is_the_stored_date_else_computed_after_any_pause() -> None:
    sub = Subscription(
        start_month=D(2014, 12, 1),
        interval_unit="month",
        interval_n=1,
        day_of_month=10,
        status="active",
        next_date=D(2015, 5, 10),
    )
    assert next_delivery(sub, today=D(2015, 4, 20)) == D(2015, 5, 10)
    sub.next_date = None
    assert next_delivery(sub, today=D(2015, 4, 20)) == D(2015, 5, 10)
    assert next_delivery(sub, today=D(2015, 5, 10)) == D(2015, 5, 10)
    sub.status, sub.paused_until = "paused", D(2015, 7, 10)
    assert next_delivery(sub, today=D(2015, 4, 20)) == D(2015, 8, 10)
    sub.status = "cancelled"
    assert next_delivery(sub, today=D(2015, 4, 20)) is None


SUBS_HEAD = ["開始月", "配送月", "配送日", "商品名", "次回配送日", "状態", "受注"]
DELIVERY_HEAD = [
    "伝票種別",
    "受注日",
    "出荷予定日",
    "お届け予定日",
    "発送先",
    "広告",
    "区分",
    "振分区分",
    "配送方法",
    "商品名",
    "個数",
    "金額",
    "何回目",
    "状態",
    "受注番号",
]


def test_subscriptions_tab_shows_subscriptions_and_delivery_history(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    add_masters(database_url)
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    other = add_customer(database_url, "北田 君子", "キタダ キミコ", "0985-11-2222")

    async def build(s: AsyncSession) -> dict[str, Any]:
        m = await masters(s)
        p = m.products

        def sub(items: list[tuple[str, int]], **kw: Any) -> Subscription:
            x = Subscription(customer_id=kw.pop("customer_id", cid), **kw)
            x.items = [
                SubscriptionItem(product_id=p[code].id, quantity=q, unit_price=p[code].price)
                for code, q in items
            ]
            return x

        subs = {
            "tonic": sub(
                [("10001", 1)],
                start_month=D(2014, 12, 1),
                interval_n=1,
                day_of_month=10,
                next_date=D(2015, 5, 10),
            ),
            "set": sub(
                [("30001", 1), ("20002", 2)],
                start_month=D(2014, 4, 1),
                interval_n=2,
                day_of_month=31,
                next_date=None,
            ),
            "paused": sub(
                [("40001", 1)],
                start_month=D(2016, 1, 4),
                interval_unit="week",
                interval_n=2,
                next_date=D(2099, 7, 7),
                status="paused",
                paused_until=D(2099, 6, 30),
            ),
            "cancelled": sub(
                [("50001", 1)],
                start_month=D(2018, 1, 1),
                next_date=None,
                status="cancelled",
                cancel_reason="飲みきれない",
            ),
            "theirs": sub([("10001", 1)], customer_id=other, start_month=D(2015, 1, 1)),
        }
        s.add_all(subs.values())
        await s.flush()

        def delivery(key: str, due: D, **kw: Any) -> Any:
            o = make_order(
                m,
                customer_id=cid,
                received=due - dt.timedelta(days=5),
                ship=due - dt.timedelta(days=2),
                deliver=due,
                slip="subscription",
                allocation="定期",
                subscription_id=subs[key].id,
                subscription_due_on=due,
                lines=kw.pop("lines", [("10001", 1, None)]),
                **kw,
            )
            s.add(o)
            return o

        first = delivery("tonic", D(2015, 1, 10), lines=[("10001", 1, None), ("90001", 1, None)])
        first.lines[1].is_present = True
        orders = {
            "t1": first,
            "s1": delivery("set", D(2014, 6, 30), lines=[("30001", 1, None), ("20002", 2, None)]),
            "t2": delivery("tonic", D(2015, 2, 10)),
            "t3": delivery("tonic", D(2015, 3, 10), payment_status="unpaid"),
            "t4": delivery("tonic", D(2015, 4, 10), status="cancelled"),
        }
        s.add(make_order(m, customer_id=cid, received=D(2015, 4, 1), lines=[("20001", 1, None)]))
        await s.flush()
        return {"subs": {k: v.id for k, v in subs.items()}, "orders": orders}

    data = in_db(database_url, build)
    sids, orders = data["subs"], data["orders"]
    make_staff("op")
    login(client, "op")
    r = client.get(f"/customers/{cid}/subscriptions")
    assert r.status_code == 200
    assert 'id="tab-subscriptions" role="tab" class="tab active"' in r.text
    t = tables(r.text)
    subs = t["subscriptions"]
    assert subs.head == SUBS_HEAD
    today = dt.datetime.now(JST).date()
    computed = next_due(
        start_month=D(2014, 4, 1),
        interval_unit="month",
        interval_n=2,
        day_of_month=31,
        on_or_after=today,
    )
    assert [row.cells for row in subs.rows] == [
        ["2016/01", "2週ごと", "火曜日", "40001 グルコサミン＆コンドロイチン 1個", "2099/07/07",
         "休止中（〜2099/06/30）", "受注へ 変更"],
        ["2014/12", "毎月", "10日", "10001 健康トニック 1個", "2015/05/10", "継続", "受注へ 変更"],
        ["2014/04", "2ヶ月ごと", "末日", "30001 健康セット 1個 20002 健康サポートテープ 2個",
         computed.strftime("%Y/%m/%d"), "継続", "受注へ 変更"],
        ["2018/01", "毎月", "10日", "50001 ごぼう茶 1個", "—", "解約 飲みきれない", "詳細"],
    ]  # fmt: skip
    assert [row.links for row in subs.rows] == [
        [f"/customers/{cid}/order?subscription={sids['paused']}",
         f"/customers/{cid}/subscriptions/{sids['paused']}"],
        [f"/customers/{cid}/order?subscription={sids['tonic']}",
         f"/customers/{cid}/subscriptions/{sids['tonic']}"],
        [f"/customers/{cid}/order?subscription={sids['set']}",
         f"/customers/{cid}/subscriptions/{sids['set']}"],
        [f"/customers/{cid}/subscriptions/{sids['cancelled']}"],
    ]  # fmt: skip
    assert "void" in subs.rows[3].classes
    url = f"/customers/{cid}/order?subscription={sids['paused']}"
    assert f'href="{url}" hx-get="{url}" hx-target="#tab-body"' in r.text

    history = t["deliveries"]
    assert history.head == DELIVERY_HEAD
    cells = [row.cells for row in history.rows]
    assert cells[0] == [
        "定期",
        "2015/04/05",
        "2015/04/08",
        "2015/04/10",
        "佐賀県",
        "○○新聞",
        "通常",
        "定期",
        "ヤマト",
        "健康トニック",
        "1",
        "6,900",
        "—",
        "キャンセル",
        f"{orders['t4'].number} 合計 7,590円",
    ]
    assert [(c[1], c[12]) for c in cells if len(c) > 3] == [
        ("2015/04/05", "—"),
        ("2015/03/05", "3回目"),
        ("2015/02/05", "2回目"),
        ("2015/01/05", "1回目"),
        ("2014/06/25", "1回目"),
    ]
    assert cells[4] == ["プレゼント 健康テープお試し品 プレゼント", "1", "0"]
    assert cells[6] == ["健康サポートテープ", "2", "11,800"]
    assert "void" in history.rows[0].group["class"]
    assert len(history.rows) == 7  # the ordinary order is not a delivery


def test_subscriptions_tab_without_subscriptions(
    client: Any, make_staff: Callable[..., int], database_url: str
) -> None:
    cid = add_customer(database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611")
    make_staff("op")
    login(client, "op")
    r = client.get(f"/customers/{cid}/subscriptions", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    assert "定期の申し込みはありません。" in r.text and "定期の配送履歴はありません。" in r.text
    assert client.get("/customers/999999/subscriptions").status_code == 404
