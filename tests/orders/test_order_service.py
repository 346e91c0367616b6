"""Order entry service: sets and companions, fees, tax, dates, validation, idempotent submit,
定期, 再注文 — on a real database with the demo masters."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.models import AuditLog
from app.auth.service import create_staff
from app.config import OrdersConfig
from app.customers.keys import kana_key, name_key
from app.customers.models import Customer, ShipTo
from app.db import make_engine, make_sessionmaker, transaction
from app.demo.service import load_masters
from app.masters.models import Ad, Product
from app.orders import service
from app.orders.models import Order, OrderLine
from app.orders.service import DraftInput, LineInput, OrderInputError
from app.responses.models import Action
from app.subscriptions.models import Subscription, SubscriptionItem
from app.web import JST

ORDERS = OrdersConfig()  # cut-off 15:00, closed on Sunday, yamato, 代引
MONDAY_MORNING = dt.datetime(2025, 4, 21, 10, 0, tzinfo=JST)


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def _customer(code: str, name: str, kana: str, **kw: Any) -> Customer:
    return Customer(
        code=code,
        name=name,
        kana=kana,
        name_key=name_key(name),
        kana_key=kana_key(kana),
        prefecture=kw.pop("prefecture", "佐賀県"),
        city=kw.pop("city", "佐賀市"),
        street="鍋島3-2",
        flags={},
        **kw,
    )


@pytest.fixture
async def world(maker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with transaction(maker) as s:
        await load_masters(s)
        staff = await create_staff(s, login="koga", name="古賀 雅美", password="password123")
        ad = await s.scalar(select(Ad).where(Ad.code == "801"))
        assert ad is not None
        taro = _customer("00000001", "佐賀 太郎", "サガ タロウ", ad_id=ad.id)
        nowhere = _customer("00000002", "住所 未定", "ジュウショ ミテイ", prefecture="", city="")
        s.add_all([taro, nowhere])
        await s.flush()
        gift = ShipTo(
            customer_id=taro.id, label="娘", name="札幌 花子", prefecture="北海道", city="札幌市"
        )
        s.add(gift)
        await s.flush()
        return {
            "staff": staff.id,
            "taro": taro.id,
            "nowhere": nowhere.id,
            "gift": gift.id,
            "ad": ad.id,
        }


def order_input(*lines: tuple[str, int], **kw: Any) -> DraftInput:
    data = DraftInput(
        idempotency_key=kw.pop("key", "k-" + "-".join(c for c, _ in lines)),
        lines=[LineInput(code=c, quantity=str(q)) for c, q in lines],
        carrier=kw.pop("carrier", "yamato"),
        payment=kw.pop("payment", "cod"),
        received_on=kw.pop("received_on", ""),
    )
    for key, value in kw.items():
        setattr(data, key, value)
    return data


async def draft_of(
    maker: async_sessionmaker[AsyncSession],
    customer_id: int,
    data: DraftInput,
    now: dt.datetime = MONDAY_MORNING,
) -> service.Draft:
    async with transaction(maker) as s:
        return await service.build_draft(
            s, customer_id=customer_id, data=data, orders=ORDERS, now=now
        )


async def submit(
    maker: async_sessionmaker[AsyncSession],
    world: dict[str, Any],
    data: DraftInput,
    *,
    customer: str = "taro",
    now: dt.datetime = MONDAY_MORNING,
) -> service.SubmitResult:
    async with transaction(maker) as s:
        return await service.submit_order(
            s,
            customer_id=world[customer],
            data=data,
            staff_id=world["staff"],
            call_id=None,
            orders=ORDERS,
            now=now,
        )


async def count(maker: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with transaction(maker) as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


# --- lines ----------------------------------------------------------------------------------


async def test_set_product_expands_into_its_parts_without_price(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    draft = await draft_of(maker, world["taro"], order_input(("30001", 2), ("10002", 1)))
    assert draft.ok, draft.errors
    got = [(x.code, x.quantity, x.unit_price, x.kind, x.parent_position) for x in draft.lines]
    assert got == [
        ("30001", 2, 12_800, "item", None),
        ("10001", 2, 0, "part", 0),  # 健康トニック ×1 per set
        ("20001", 2, 0, "part", 0),  # 健康テープ ×1 per set
        ("10002", 1, 19_800, "item", None),
        ("10001", 3, 0, "part", 3),  # 3本セット
    ]
    assert draft.rows[0].is_set and [c.code for c in draft.rows[0].children] == ["10001", "20001"]
    assert draft.quote is not None and draft.quote.subtotal == 2 * 12_800 + 19_800


async def test_companion_is_added_and_marked(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    draft = await draft_of(maker, world["taro"], order_input(("20002", 2)))
    assert [(x.code, x.quantity, x.kind, x.parent_position) for x in draft.lines] == [
        ("20002", 2, "item", None),
        ("99001", 2, "companion", 0),
    ]
    assert draft.rows[0].children[0].name == "取扱説明書（サポートテープ）"
    assert draft.quote is not None and draft.quote.subtotal == 2 * 5900


async def test_name_or_kana_resolves_a_unique_product_but_a_code_must_be_exact(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    draft = await draft_of(
        maker,
        world["taro"],
        order_input(
            ("ごぼうちゃ", 1), ("トニック", 1), ("5000", 1), ("９９９９９", 1), ("健康テープ", 1)
        ),
    )
    assert draft.rows[0].code == "50001" and draft.rows[0].name == "ごぼう茶"
    assert draft.rows[4].code == "20001"  # the exact name, though お試し品 contains it too
    assert draft.errors["line-1-code"].startswith("該当する商品が複数あります")
    assert draft.errors["line-2-code"] == "未登録の商品コードです。"
    assert draft.errors["line-3-code"] == "未登録の商品コードです。"


async def test_suggestions_by_code_prefix_name_and_kana_only_products_on_sale(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    day = MONDAY_MORNING.date()
    async with transaction(maker) as s:
        tonic = await s.scalar(select(Product).where(Product.code == "10002"))
        assert tonic is not None
        tonic.sale_to = day - dt.timedelta(days=1)  # the 3本セット has ended
        codes = [p.code for p in await service.product_suggestions(s, q="1000", on=day)]
        assert codes == ["10001"]
        names = [p.name for p in await service.product_suggestions(s, q="けんこう", on=day)]
        assert "健康トニック" in names and "健康テープ" in names
        assert [p.code for p in await service.product_suggestions(s, q="ﾁｬ", on=day)] == [
            "50001",
            "50002",
        ]
        assert await service.product_suggestions(s, q="%", on=day) == []
    draft = await draft_of(maker, world["taro"], order_input(("10002", 1)))
    assert draft.errors["line-0-code"].startswith("販売期間外の商品です")


async def test_unit_price_follows_the_product_unless_the_operator_changed_it(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    data = order_input(("10001", 1), ("20001", 1), ("20003", 1))
    data.lines[0].unit_price, data.lines[0].base = "6000", "10001:6900"  # operator's price
    data.lines[1].unit_price, data.lines[1].base = "6900", "10001:6900"  # code was changed
    data.lines[2].unit_price, data.lines[2].base = "-5", "20003:3800"
    draft = await draft_of(maker, world["taro"], data)
    assert [r.unit_price for r in draft.rows] == ["6000", "5800", "-5"]
    assert draft.errors == {"line-2-price": "単価は0円以上で入力してください。"}


# --- fees, tax, dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("carrier", "ship_to", "fee", "lead"),
    [
        ("yamato", "", 650, 1),  # 佐賀県: 九州
        ("sagawa", "", 600, 1),
        ("yamato", "gift", 1500, 3),  # 北海道
        ("sagawa", "gift", 1450, 3),
    ],
)
async def test_shipping_fee_by_destination_prefecture_and_carrier(
    maker: async_sessionmaker[AsyncSession],
    world: dict[str, Any],
    carrier: str,
    ship_to: str,
    fee: int,
    lead: int,
) -> None:
    data = order_input(
        ("20001", 1), carrier=carrier, ship_to=str(world[ship_to]) if ship_to else ""
    )
    draft = await draft_of(maker, world["taro"], data)
    assert draft.ok, draft.errors
    assert draft.quote is not None and draft.quote.shipping_fee == fee
    assert draft.lead_days == lead
    assert draft.origin_region == "福岡県"
    assert draft.dest_region == ("北海道" if ship_to else "九州")
    assert draft.deliver_on == dt.date(2025, 4, 21) + dt.timedelta(days=lead)


@pytest.mark.parametrize(("payment", "cod_fee"), [("cod", 330), ("postal", 0), ("card", 0)])
async def test_cod_fee_only_for_cash_on_delivery(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any], payment: str, cod_fee: int
) -> None:
    draft = await draft_of(maker, world["taro"], order_input(("20001", 1), payment=payment))
    assert draft.quote is not None and draft.quote.cod_fee == cod_fee


async def test_tax_is_8_percent_on_food_and_10_on_the_rest_with_fees(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    draft = await draft_of(maker, world["taro"], order_input(("10001", 1), ("20001", 1)))
    q = draft.quote
    assert q is not None
    assert q.subtotal == 6900 + 5800
    assert q.tax_reduced == 552  # 6,900 × 8%
    assert q.tax_standard == 678  # (5,800 + 650 + 330) × 10%
    assert q.total == 12_700 + 650 + 330 + 552 + 678


@pytest.mark.parametrize(
    ("now", "ship", "deliver"),
    [
        (dt.datetime(2025, 4, 28, 10, 0, tzinfo=JST), dt.date(2025, 4, 28), dt.date(2025, 4, 29)),
        # after the cut-off on Monday: Tuesday 4/29 is 昭和の日, so Wednesday
        (dt.datetime(2025, 4, 28, 15, 30, tzinfo=JST), dt.date(2025, 4, 30), dt.date(2025, 5, 1)),
        # Saturday afternoon: Sunday closed → Monday
        (dt.datetime(2025, 4, 26, 16, 0, tzinfo=JST), dt.date(2025, 4, 28), dt.date(2025, 4, 29)),
    ],
)
async def test_dates_follow_cut_off_closed_days_and_holidays(
    maker: async_sessionmaker[AsyncSession],
    world: dict[str, Any],
    now: dt.datetime,
    ship: dt.date,
    deliver: dt.date,
) -> None:
    draft = await draft_of(maker, world["taro"], order_input(("20001", 1)), now=now)
    assert draft.received_on == now.date()
    assert (draft.ship_on, draft.deliver_on) == (ship, deliver)


async def test_edited_dates_are_kept_and_computed_ones_follow_changes(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    first = await draft_of(maker, world["taro"], order_input(("20001", 1)))
    assert first.data.ship_on == "2025/04/21" and first.data.deliver_on == "2025/04/22"
    # the operator picks a later delivery day (typed as 4/25); then changes the carrier and ship-to
    data = replace_data(first.data, deliver_on="4/25", ship_to=str(world["gift"]))
    second = await draft_of(maker, world["taro"], data)
    assert second.deliver_on == dt.date(2025, 4, 25)
    # a back-dated 受付日 (a postcard typed in late) still ships from today on
    data = replace_data(second.data, received_on="2025/04/19")
    third = await draft_of(maker, world["taro"], data)
    assert third.ok and third.ship_on == dt.date(2025, 4, 21)
    assert third.deliver_on == dt.date(2025, 4, 25)
    # a delivery sooner than the carrier can make it is allowed with a note
    data = replace_data(third.data, deliver_on="2025/04/21")
    fourth = await draft_of(maker, world["taro"], data)
    assert fourth.ok and fourth.notes["deliver_on"] == "通常のお届けは2025/04/24以降です。"
    # a ship date already past, or a 受付日 too far back, is refused beside the field
    data = replace_data(
        fourth.data, received_on="2025/04/15", ship_on="2025/04/16", deliver_on="2025/04/25"
    )
    fifth = await draft_of(maker, world["taro"], data)
    assert fifth.errors["ship_on"] == "出荷予定日に過ぎた日付は指定できません。"
    data = replace_data(fourth.data, received_on="2025/03/01")
    sixth = await draft_of(maker, world["taro"], data)
    assert sixth.errors["received_on"] == "受付日は31日前までです。日付を確認してください。"


def replace_data(data: DraftInput, **kw: str) -> DraftInput:
    from dataclasses import replace

    return replace(data, **kw)


# --- validation ------------------------------------------------------------------------------


async def test_validation_messages_per_field_and_line(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    data = order_input(
        ("12345", 1),
        ("10001", 0),
        ("20001", 1),
        received_on="2025/04/21",
        ship_on="2025/04/18",
        ship_auto="2025-04-21",
    )
    draft = await draft_of(maker, world["taro"], data)
    assert draft.errors == {
        "line-0-code": "未登録の商品コードです。",
        "line-1-qty": "個数は1以上で入力してください。",
        "ship_on": "出荷予定日は受付日以降の日付を入力してください。",
    }
    data = order_input(("10001", 1), deliver_on="2025/04/20", deliver_auto="2025-04-22")
    draft = await draft_of(maker, world["taro"], data)
    assert draft.errors == {"deliver_on": "お届け予定日は出荷予定日以降の日付を入力してください。"}
    draft = await draft_of(maker, world["taro"], order_input(received_on="2025/04/22"))
    assert draft.errors == {
        "lines": "商品を1つ以上入力してください。",
        "received_on": "受付日に未来の日付は指定できません。",
    }


async def test_subscription_only_for_subscribable_products(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    data = order_input(("10001", 1), ("20003", 1), ("90001", 1), slip_type="subscription")
    draft = await draft_of(maker, world["taro"], data)
    # ひざサポーター is not 定期可; a present (プレゼント) may go with the first delivery
    assert draft.errors == {"line-1-code": "定期は定期可の商品のみです。"}


async def test_destination_without_prefecture_is_refused_and_nothing_written(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    with pytest.raises(OrderInputError) as caught:
        await submit(maker, world, order_input(("20001", 1)), customer="nowhere")
    assert caught.value.errors == {
        "ship_to": "発送先の都道府県が未設定です。住所を登録してください。"
    }
    with pytest.raises(OrderInputError) as caught:
        await submit(maker, world, order_input(("nope", 1), key="bad"))
    assert caught.value.draft is not None
    assert caught.value.errors["line-0-code"] == "未登録の商品コードです。"
    for model in (Order, OrderLine, Action, Subscription):
        assert await count(maker, model) == 0
    async with transaction(maker) as s:
        assert await s.scalar(select(AuditLog).where(AuditLog.entity == "order")) is None


# --- submit ----------------------------------------------------------------------------------


async def test_submit_writes_order_lines_action_and_audit(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    data = order_input(("30001", 1), ("20002", 1), ad=str(world["ad"]), time_slot="0812")
    result = await submit(maker, world, data)
    assert result.created
    async with transaction(maker) as s:
        order = await s.scalar(select(Order))
        assert order is not None
        assert order.number == f"20250421-{order.id:07d}"
        assert (order.slip_type, order.category, order.allocation) == ("normal", "通常", "電話")
        assert (order.received_on, order.ship_on, order.deliver_on) == (
            dt.date(2025, 4, 21),
            dt.date(2025, 4, 21),
            dt.date(2025, 4, 22),
        )
        assert (order.origin_region, order.dest_region, order.time_slot) == (
            "福岡県",
            "九州",
            "0812",
        )
        assert (order.subtotal, order.shipping_fee, order.cod_fee) == (12_800 + 5900, 650, 330)
        assert order.tax == (12_800 + 5900 + 650 + 330) // 10
        assert order.total == 12_800 + 5900 + 650 + 330 + order.tax
        assert order.staff_id == world["staff"] and order.payment_status == "unpaid"
        lines = (await s.scalars(select(OrderLine).order_by(OrderLine.position))).all()
        assert [(x.product_code, x.amount, x.parent_position) for x in lines] == [
            ("30001", 12_800, None),
            ("10001", 0, 0),
            ("20001", 0, 0),
            ("20002", 5900, None),
            ("99001", 0, 3),
        ]
        action = await s.scalar(select(Action))
        assert action is not None
        assert (action.kind, action.order_id, action.amount) == ("order", order.id, order.total)
        assert action.content == "受注 健康セット 1個 ほか"
        audit = await s.scalar(select(AuditLog).where(AuditLog.entity == "order"))
        assert audit is not None and (audit.action, audit.entity_id) == ("create", order.id)


async def test_same_key_twice_makes_one_order(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    data = order_input(("20001", 1), key="double-click")
    first = await submit(maker, world, data)
    second = await submit(maker, world, data)
    assert first.created and not second.created
    assert first.order.id == second.order.id and second.order.number == first.order.number
    assert [x.product_code for x in second.order.lines] == ["20001"]
    assert await count(maker, Order) == 1 and await count(maker, Action) == 1


async def test_two_concurrent_submits_with_one_key_make_one_order(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    data = order_input(("20001", 1), ("10001", 2), key="retried")
    results = await asyncio.gather(*(submit(maker, world, data) for _ in range(2)))
    assert sorted(r.created for r in results) == [False, True]
    assert results[0].order.number == results[1].order.number
    # the retry arrives while the first request's transaction is still open: it waits for it
    # and answers with its order
    again = order_input(("20003", 1), key="in-flight")
    async with maker() as first:
        made = await service.submit_order(
            first,
            customer_id=world["taro"],
            data=again,
            staff_id=world["staff"],
            call_id=None,
            orders=ORDERS,
            now=MONDAY_MORNING,
        )
        retry = asyncio.create_task(submit(maker, world, again))
        await asyncio.sleep(0.2)
        await first.commit()
    retried = await retry
    assert made.created and not retried.created and retried.order.id == made.order.id
    assert await count(maker, Order) == 2
    assert await count(maker, OrderLine) == 3
    assert await count(maker, Action) == 2


async def test_subscription_order_records_the_subscription(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    data = order_input(
        ("10001", 2), ("90001", 1), slip_type="subscription", interval="m2", day_of_month="10"
    )
    result = await submit(maker, world, data)
    async with transaction(maker) as s:
        sub = await s.scalar(select(Subscription))
        assert sub is not None
        items = (await s.scalars(select(SubscriptionItem))).all()
        order = await s.get(Order, result.order.id)
        assert order is not None
        assert (order.slip_type, order.subscription_id) == ("subscription", sub.id)
        assert order.subscription_due_on == order.deliver_on == dt.date(2025, 4, 22)
        assert (sub.customer_id, sub.status, sub.interval_unit, sub.interval_n) == (
            world["taro"],
            "active",
            "month",
            2,
        )
        assert (sub.day_of_month, sub.start_month, sub.next_date) == (
            10,
            dt.date(2025, 4, 1),
            dt.date(2025, 6, 10),
        )
        assert (sub.payment_method, sub.carrier_id) == ("cod", order.carrier_id)
        # the present goes with this delivery only
        assert [(i.quantity, i.unit_price) for i in items] == [(2, 6900)]
        action = await s.scalar(select(Action))
        assert action is not None and action.content.startswith("定期 健康トニック 2個")


async def test_weekly_subscription_next_date(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    data = order_input(("40001", 1), slip_type="subscription", interval="w", interval_n="3")
    draft = await draft_of(maker, world["taro"], data)
    assert draft.subscription is not None
    assert draft.subscription.next_date == dt.date(2025, 4, 22) + dt.timedelta(weeks=3)
    data = order_input(("40001", 1), slip_type="subscription", interval="m", interval_n="0")
    draft = await draft_of(maker, world["taro"], data)
    assert draft.errors == {"interval_n": "間隔は1〜12で入力してください。"}


# --- 再注文 ------------------------------------------------------------------------------------


async def test_reorder_draft_has_the_same_products_today_and_current_prices(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    data = order_input(
        ("30001", 1),
        ("20002", 3),
        ("90001", 1),
        carrier="sagawa",
        payment="postal",
        ship_to=str(world["gift"]),
    )
    data.lines[1].unit_price, data.lines[1].base = "5000", "20002:5900"
    old = await submit(maker, world, data, now=dt.datetime(2025, 3, 3, 11, 0, tzinfo=JST))
    async with transaction(maker) as s:
        again = await service.draft_from_order(
            s,
            customer_id=world["taro"],
            order_id=old.order.id,
            orders=ORDERS,
            today=MONDAY_MORNING.date(),
        )
        other = await service.draft_from_order(
            s,
            customer_id=world["nowhere"],
            order_id=old.order.id,
            orders=ORDERS,
            today=MONDAY_MORNING.date(),
        )
    assert other is None
    assert again is not None
    assert [(x.code, x.quantity) for x in again.lines] == [("30001", "1"), ("20002", "3")]
    assert (again.carrier, again.payment, again.ship_to) == ("sagawa", "postal", str(world["gift"]))
    assert again.idempotency_key and again.idempotency_key != data.idempotency_key
    draft = await draft_of(maker, world["taro"], again)
    assert draft.ok and draft.received_on == MONDAY_MORNING.date()
    assert [r.unit_price for r in draft.rows] == ["12800", "5900"]


async def test_order_from_a_subscription_uses_its_items(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    async with transaction(maker) as s:
        tea = await s.scalar(select(Product).where(Product.code == "50001"))
        assert tea is not None
        sub = Subscription(
            customer_id=world["taro"],
            start_month=dt.date(2025, 1, 1),
            payment_method="card",
        )
        sub.items = [SubscriptionItem(product_id=tea.id, quantity=2, unit_price=2200)]
        s.add(sub)
        await s.flush()
        sub_id = sub.id
    async with transaction(maker) as s:
        data = await service.draft_from_subscription(
            s,
            customer_id=world["taro"],
            subscription_id=sub_id,
            orders=ORDERS,
            today=MONDAY_MORNING.date(),
        )
        assert not await service.draft_from_subscription(
            s,
            customer_id=world["nowhere"],
            subscription_id=sub_id,
            orders=ORDERS,
            today=MONDAY_MORNING.date(),
        )
    assert data is not None and data.payment == "card"
    draft = await draft_of(maker, world["taro"], data)
    assert [(r.code, r.quantity, r.unit_price) for r in draft.rows] == [("50001", "2", "2200")]


async def test_an_order_keeps_where_it_was_sent_when_the_address_changes_later(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    from app.customers.models import ShipTo
    from app.orders.history import purchase_lines

    data = order_input(("20001", 1), key="snap", ship_to=str(world["gift"]))
    result = await submit(maker, world, data)
    async with transaction(maker) as s:
        order = await s.get(Order, result.order.id)
        assert order is not None
        assert (order.ship_prefecture, order.ship_name) == ("北海道", "札幌 花子")
        gift = await s.get(ShipTo, world["gift"])
        assert gift is not None
        gift.prefecture, gift.city = "沖縄県", "那覇市"  # the recipient moves afterwards
    async with transaction(maker) as s:
        page = await purchase_lines(s, customer_id=world["taro"])
        assert [o.destination for o in page.orders] == ["北海道"]
