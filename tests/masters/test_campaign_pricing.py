"""Campaigns in order pricing (X7, R4, O3): each rule, two at once, a rule outside its period,
a retired rule, the stored order campaigns and プレゼント履歴, 定期 terms without campaigns."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.service import create_staff
from app.config import OrdersConfig
from app.customers.keys import kana_key, name_key
from app.customers.models import Customer
from app.db import make_engine, make_sessionmaker, transaction
from app.demo.service import load_masters
from app.masters.models import Campaign, OrderCampaign, Present, Product, Rank
from app.orders import service
from app.orders.models import Order, OrderLine
from app.orders.service import DraftInput, LineInput
from app.web import JST

ORDERS = OrdersConfig()
MONDAY = dt.datetime(2025, 4, 21, 10, 0, tzinfo=JST)
TODAY = MONDAY.date()
# 20003 ひざサポーター 3,800円 (standard rate); Saga by Yamato: 650円, COD 330円
PLAIN_TOTAL = 3800 + 650 + 330 + (3800 + 650 + 330) // 10


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def world(maker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with transaction(maker) as s:
        await load_masters(s)
        staff = await create_staff(s, login="koga", name="古賀 雅美", password="password123")
        gold = await s.scalar(select(Rank).where(Rank.code == "gold"))
        assert gold is not None
        ids: dict[str, Any] = {"staff": staff.id, "gold": gold.id}
        for key, code, name, rank in (
            ("new", "00000001", "新井 初子", None),
            ("old", "00000002", "古田 常男", gold.id),
        ):
            c = Customer(
                code=code,
                name=name,
                kana="テスト",
                name_key=name_key(name),
                kana_key=kana_key("テスト"),
                prefecture="佐賀県",
                city="佐賀市",
                street="鍋島3-2",
                flags={},
                rank_id=rank,
            )
            s.add(c)
            await s.flush()
            ids[key] = c.id
        # the regular customer has ordered before
        s.add(
            Order(
                number="20250101-0000001",
                customer_id=ids["old"],
                received_on=dt.date(2025, 1, 10),
                total=5000,
            )
        )
        products = {p.code: p.id for p in await s.scalars(select(Product))}
        ids["products"] = products
        return ids


async def add_campaign(maker: async_sessionmaker[AsyncSession], **kw: Any) -> int:
    async with transaction(maker) as s:
        c = Campaign(**{"active": True, "min_subtotal": 0, "note": "", **kw})
        s.add(c)
        await s.flush()
        return int(c.id)


def order_input(*lines: tuple[str, int], key: str = "k1", **kw: Any) -> DraftInput:
    data = DraftInput(
        idempotency_key=key,
        lines=[LineInput(code=c, quantity=str(q)) for c, q in lines],
        carrier="yamato",
        payment="cod",
    )
    for k, v in kw.items():
        setattr(data, k, v)
    return data


async def draft_of(
    maker: async_sessionmaker[AsyncSession], customer_id: int, data: DraftInput
) -> service.Draft:
    async with transaction(maker) as s:
        return await service.build_draft(
            s, customer_id=customer_id, data=data, orders=ORDERS, now=MONDAY
        )


async def test_without_campaigns_the_price_is_the_plain_price(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    draft = await draft_of(maker, world["new"], order_input(("20003", 1)))
    assert draft.ok, draft.errors
    assert draft.campaigns == []
    assert draft.quote is not None and draft.quote.total == PLAIN_TOTAL


async def test_free_shipping_above_a_subtotal(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    await add_campaign(
        maker, code="FS", name="春の送料無料", kind="free_shipping", min_subtotal=5000
    )
    small = await draft_of(maker, world["old"], order_input(("20003", 1)))
    assert small.campaigns == [] and small.quote is not None
    assert small.quote.shipping_fee == 650
    big = await draft_of(maker, world["old"], order_input(("20003", 2)))
    assert [c.name for c in big.campaigns] == ["春の送料無料"]
    assert big.campaigns[0].amount == 650
    assert "送料無料" in big.campaigns[0].effect
    q = big.quote
    assert q is not None and q.shipping_fee == 0 and q.cod_fee == 330
    assert q.total == 7600 + 330 + (7600 + 330) // 10


async def test_new_customer_discount_only_for_a_customer_without_orders(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    await add_campaign(
        maker, code="NEW", name="新規500円引き", kind="new_customer", discount_amount=500
    )
    new = await draft_of(maker, world["new"], order_input(("20003", 1)))
    assert [(c.name, c.amount) for c in new.campaigns] == [("新規500円引き", 500)]
    assert new.quote is not None and new.quote.discount == 500
    assert new.quote.total == 3300 + 650 + 330 + (3300 + 650 + 330) // 10
    old = await draft_of(maker, world["old"], order_input(("20003", 1)))
    assert old.campaigns == [] and old.quote is not None and old.quote.total == PLAIN_TOTAL


async def test_rank_discount_by_percent_for_that_rank_only(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    await add_campaign(
        maker,
        code="GOLD",
        name="ゴールド会員10%引き",
        kind="rank_discount",
        rank_id=world["gold"],
        discount_percent=10,
    )
    gold = await draft_of(maker, world["old"], order_input(("20003", 1)))
    assert [(c.name, c.amount) for c in gold.campaigns] == [("ゴールド会員10%引き", 380)]
    assert gold.quote is not None and gold.quote.discount == 380
    other = await draft_of(maker, world["new"], order_input(("20003", 1)))
    assert other.campaigns == []


async def test_present_is_a_zero_yen_line_and_recorded_on_submit(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    p = world["products"]
    await add_campaign(
        maker,
        code="GIFT",
        name="サポーター購入で手ぬぐい",
        kind="present",
        product_id=p["20003"],
        present_product_id=p["90002"],
        present_quantity=1,
    )
    draft = await draft_of(maker, world["new"], order_input(("20003", 2)))
    assert draft.ok, draft.errors
    presents = [x for x in draft.lines if x.kind == "present"]
    assert [(x.code, x.quantity, x.unit_price, x.is_present) for x in presents] == [
        ("90002", 1, 0, True)
    ]
    assert draft.rows[0].children == presents  # shown under the line that earned it
    assert draft.quote is not None and draft.quote.subtotal == 7600  # the present is free
    async with transaction(maker) as s:
        result = await service.submit_order(
            s,
            customer_id=world["new"],
            data=order_input(("20003", 2), key="gift-1"),
            staff_id=world["staff"],
            call_id=None,
            orders=ORDERS,
            now=MONDAY,
        )
        order_id = result.order.id
    async with transaction(maker) as s:
        lines = list(await s.scalars(select(OrderLine).where(OrderLine.order_id == order_id)))
        assert [(x.product_code, x.unit_price, x.is_present) for x in lines] == [
            ("20003", 3800, False),
            ("90002", 0, True),
        ]
        applied = list(await s.scalars(select(OrderCampaign)))
        assert [(a.order_id, a.name, a.kind) for a in applied] == [
            (order_id, "サポーター購入で手ぬぐい", "present")
        ]
        given = list(await s.scalars(select(Present)))
        assert [
            (g.customer_id, g.order_id, g.product_name, g.quantity, g.given_on) for g in given
        ] == [(world["new"], order_id, "プレゼント オリジナル手ぬぐい", 1, TODAY)]
    # the present does not apply without the product
    other = await draft_of(maker, world["new"], order_input(("50001", 1)))
    assert other.campaigns == [] and not [x for x in other.lines if x.kind == "present"]


async def test_two_rules_at_once_and_both_stored(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    await add_campaign(maker, code="A-FS", name="送料無料", kind="free_shipping")
    await add_campaign(
        maker, code="B-NEW", name="新規500円引き", kind="new_customer", discount_amount=500
    )
    draft = await draft_of(maker, world["new"], order_input(("20003", 1)))
    assert [(c.name, c.amount) for c in draft.campaigns] == [
        ("送料無料", 650),
        ("新規500円引き", 500),
    ]
    q = draft.quote
    assert q is not None and (q.shipping_fee, q.discount) == (0, 500)
    assert q.total == 3300 + 330 + (3300 + 330) // 10
    async with transaction(maker) as s:
        result = await service.submit_order(
            s,
            customer_id=world["new"],
            data=order_input(("20003", 1), key="two-1"),
            staff_id=world["staff"],
            call_id=None,
            orders=ORDERS,
            now=MONDAY,
        )
        assert (result.order.shipping_fee, result.order.discount) == (0, 500)
        assert result.order.total == q.total
        stored = await service.order_campaigns(s, order_id=result.order.id)
        assert [(c.name, c.amount) for c in stored] == [("送料無料", 650), ("新規500円引き", 500)]


async def test_a_rule_outside_its_period_or_retired_never_applies(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    await add_campaign(
        maker,
        code="PAST",
        name="去年の送料無料",
        kind="free_shipping",
        starts_on=dt.date(2024, 4, 1),
        ends_on=dt.date(2024, 4, 30),
    )
    await add_campaign(
        maker,
        code="LATER",
        name="来月の新規値引き",
        kind="new_customer",
        discount_amount=500,
        starts_on=TODAY + dt.timedelta(days=1),
    )
    await add_campaign(maker, code="OFF", name="停止中", kind="free_shipping", active=False)
    await add_campaign(
        maker,
        code="NOW",
        name="今日まで送料無料",
        kind="free_shipping",
        starts_on=TODAY - dt.timedelta(days=30),
        ends_on=TODAY,
    )
    draft = await draft_of(maker, world["new"], order_input(("20003", 1)))
    assert [c.name for c in draft.campaigns] == ["今日まで送料無料"]
    # a back-dated order is priced by the campaigns of its 受付日
    back = await draft_of(maker, world["new"], order_input(("20003", 1), received_on="2025/04/20"))
    assert [c.name for c in back.campaigns] == ["今日まで送料無料"]


async def test_subscription_terms_price_later_deliveries_without_campaigns(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    await add_campaign(
        maker, code="NEW", name="新規500円引き", kind="new_customer", discount_amount=500
    )
    # 10001 健康トニック 6,900円 (reduced rate 8%), 定期可
    draft = await draft_of(maker, world["new"], order_input(("10001", 1), slip_type="subscription"))
    assert draft.ok, draft.errors
    assert draft.quote is not None and draft.quote.discount == 500
    assert draft.terms is not None
    assert draft.terms.later_total == 6900 + 650 + 330 + (650 + 330) // 10 + 6900 * 8 // 100
    assert draft.subscription is not None
    assert draft.terms.next_dates[0] == draft.subscription.next_date


async def test_a_fixed_rank_discount_and_discounts_capped_at_the_goods_amount(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    await add_campaign(
        maker,
        code="GOLDY",
        name="ゴールド会員3,000円引き",
        kind="rank_discount",
        rank_id=world["gold"],
        discount_amount=3000,
    )
    gold = await draft_of(maker, world["old"], order_input(("20003", 1)))
    assert [(c.name, c.amount) for c in gold.campaigns] == [("ゴールド会員3,000円引き", 3000)]
    assert gold.quote is not None and gold.quote.discount == 3000
    # A second discount finds only 800 円 of goods left: it takes 800, and says so.
    await add_campaign(
        maker,
        code="GOLDZ",
        name="ゴールド感謝1,000円引き",
        kind="rank_discount",
        rank_id=world["gold"],
        discount_amount=1000,
    )
    both = await draft_of(maker, world["old"], order_input(("20003", 1)))
    assert [c.amount for c in both.campaigns] == [3000, 800]
    assert "（800円）" in both.campaigns[1].effect
    q = both.quote
    assert q is not None and q.discount == 3800 == sum(c.amount for c in both.campaigns)
    assert q.total == 650 + 330 + (650 + 330) // 10


async def test_a_capped_percent_discount_shows_what_it_took_once(
    maker: async_sessionmaker[AsyncSession], world: dict[str, Any]
) -> None:
    for code, kw in (("GA", {"discount_amount": 1000}), ("GB", {"discount_percent": 90})):
        await add_campaign(
            maker, code=code, name=code, kind="rank_discount", rank_id=world["gold"], **kw
        )
    draft = await draft_of(maker, world["old"], order_input(("20003", 1)))
    # 90 % of 3,800 is 3,420, but only 2,800 is left after the 1,000 yen off.
    assert [(c.effect, c.amount) for c in draft.campaigns] == [
        ("ランク割引 1,000円引き", 1000),
        ("ランク割引 90%引き（2,800円）", 2800),
    ]
