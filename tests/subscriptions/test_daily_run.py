"""The daily subscription run (S2): orders made exactly once per subscription and due date,
dated and priced as order entry does, next delivery moved on; skips, pauses, problems."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import OrdersConfig
from app.db import make_engine, make_sessionmaker
from app.orders.dates import ship_date
from app.orders.models import Order
from app.orders.pricing import PriceLine, quote
from app.subscriptions.daily import run_daily
from app.subscriptions.models import Subscription
from app.subscriptions.shipments import shipments
from app.web import JST
from tests.conftest import run_async
from tests.factories import add_customer, add_masters
from tests.orders.test_history import in_db
from tests.subscriptions.helpers import (
    add_subscription,
    count_orders,
    lines_of,
    orders_of,
    run,
    subscription,
)

D = dt.date


def test_run_makes_each_due_order_once_and_moves_the_next_date_on(database_url: str) -> None:
    add_masters(database_url)
    cid = add_customer(
        database_url,
        "北田 君子",
        "キタダ キミコ",
        "0985-22-1111",
        prefecture="宮崎県",
        city="宮崎市",
        street="乙3-2",
    )
    due = D(2026, 1, 31)
    sid = add_subscription(database_url, customer_id=cid, next_date=due, products=(("10001", 2),))
    later = add_subscription(database_url, customer_id=cid, next_date=D(2026, 2, 10))

    first = run(database_url, due)
    assert (first.due, first.created, first.existing) == (1, 1, 0)
    second = run(database_url, due)
    assert (second.created, second.existing) == (0, 0)
    assert count_orders(database_url) == 1

    (order,) = orders_of(database_url, sid)
    assert order.slip_type == "subscription"
    assert order.subscription_due_on == due
    assert order.received_on == due
    assert order.number == f"20260131-{order.id:07d}"
    expected_ship = ship_date(dt.datetime.combine(due, dt.time(6), JST))
    assert order.ship_on == expected_ship
    assert order.deliver_on is not None and order.deliver_on > order.ship_on
    assert order.ship_prefecture == "宮崎県"
    q = quote(
        [PriceLine("10001", "健康トニック", 2, 6900, "reduced")],
        shipping_fee=order.shipping_fee,
        cod_fee=order.cod_fee,
    )
    assert order.cod_fee > 0 and order.shipping_fee > 0
    assert (order.subtotal, order.tax, order.total) == (13_800, q.tax, q.total)
    assert lines_of(database_url, order.id)[0] == ("10001", 2, 6900, None)
    # The 31st in a month without one falls to the month's last day.
    assert subscription(database_url, sid).next_date == D(2026, 2, 28)
    assert subscription(database_url, later).next_date == D(2026, 2, 10)
    assert orders_of(database_url, later) == []


def test_subscription_prices_and_set_products_expand_like_order_entry(database_url: str) -> None:
    add_masters(database_url)
    cid = add_customer(
        database_url, "佐田 浩二", "サダ コウジ", "03-1111-2222", prefecture="東京都"
    )
    sid = add_subscription(
        database_url,
        customer_id=cid,
        next_date=D(2026, 3, 10),
        products=(("10002", 1),),
        unit_price=18_000,
        payment="card",
    )
    run(database_url, D(2026, 3, 10))
    (order,) = orders_of(database_url, sid)
    lines = lines_of(database_url, order.id)
    assert lines[0] == ("10002", 1, 18_000, None)
    assert all(parent == 0 and price == 0 for _code, _q, price, parent in lines[1:])
    assert order.subtotal == 18_000
    assert order.cod_fee == 0


def test_pauses_skips_cancellations_and_problems(database_url: str) -> None:
    add_masters(database_url)
    cid = add_customer(database_url, "小村 信二", "コムラ シンジ", "0952-26-1111")
    day = D(2026, 4, 10)
    paused = add_subscription(
        database_url, customer_id=cid, next_date=day, status="paused", paused_until=D(2026, 4, 30)
    )
    resumed = add_subscription(
        database_url, customer_id=cid, next_date=day, status="paused", paused_until=D(2026, 4, 9)
    )
    cancelled = add_subscription(database_url, customer_id=cid, next_date=day, status="cancelled")
    weekly = add_subscription(database_url, customer_id=cid, next_date=day, unit="week", n=2)
    no_rate = add_subscription(database_url, customer_id=cid, next_date=day, carrier="nope")

    result = run(database_url, day)
    assert result.created == 2
    assert orders_of(database_url, paused) == [] and orders_of(database_url, cancelled) == []
    assert len(orders_of(database_url, resumed)) == 1
    sub = subscription(database_url, resumed)
    assert (sub.status, sub.paused_until, sub.next_date) == ("active", None, D(2026, 5, 10))
    assert subscription(database_url, weekly).next_date == D(2026, 4, 24)
    assert result.problems == {no_rate: "配送会社がありません。"}
    assert subscription(database_url, no_rate).next_date == day  # tried again next time


def test_a_missed_due_date_is_made_on_the_next_run_with_its_own_due_date(database_url: str) -> None:
    add_masters(database_url)
    cid = add_customer(database_url, "佐野 小枝子", "サノ サエコ", "0952-26-5555")
    sid = add_subscription(database_url, customer_id=cid, next_date=D(2026, 5, 10))
    run(database_url, D(2026, 7, 1))
    (order,) = orders_of(database_url, sid)
    assert order.subscription_due_on == D(2026, 5, 10)
    assert order.received_on == D(2026, 7, 1)
    assert subscription(database_url, sid).next_date == D(2026, 7, 10)


def test_two_runs_at_once_make_no_duplicates(database_url: str) -> None:
    add_masters(database_url)
    day = D(2026, 6, 10)
    sids = []
    for i in range(30):
        cid = add_customer(database_url, f"同時 太郎{i}", "ドウジ タロウ", f"0952-30-{1000 + i}")
        sids.append(add_subscription(database_url, customer_id=cid, next_date=day))

    async def both() -> tuple[int, int]:
        engines = [make_engine(database_url) for _ in range(2)]
        try:
            a, b = await asyncio.gather(
                *(
                    run_daily(make_sessionmaker(e), day=day, today=day, orders=OrdersConfig())
                    for e in engines
                )
            )
            return a.created, b.created
        finally:
            for e in engines:
                await e.dispose()

    a, b = run_async(both())
    assert a + b == 30
    assert count_orders(database_url) == 30
    assert all(len(orders_of(database_url, s)) == 1 for s in sids)
    assert all(subscription(database_url, s).next_date == D(2026, 7, 10) for s in sids)


def test_the_database_refuses_a_second_order_for_the_same_due_date(database_url: str) -> None:
    """A run that read the subscription before another run moved it on (its next_date still
    the due date) makes nothing: the unique (subscription, due date) decides, not the code."""
    add_masters(database_url)
    cid = add_customer(database_url, "佐田 浩二", "サダ コウジ", "03-5555-1212")
    due = D(2026, 4, 10)
    sid = add_subscription(database_url, customer_id=cid, next_date=due)
    assert run(database_url, due).created == 1

    async def rewind(s: AsyncSession) -> None:
        await s.execute(update(Subscription).where(Subscription.id == sid).values(next_date=due))

    in_db(database_url, rewind)
    again = run(database_url, due)
    assert (again.due, again.created, again.existing) == (1, 0, 1)
    assert len(orders_of(database_url, sid)) == 1
    # It still moves the subscription on (its order exists).
    assert subscription(database_url, sid).next_date == D(2026, 5, 10)

    async def duplicate(s: AsyncSession) -> None:
        (order,) = (await s.scalars(select(Order).where(Order.subscription_id == sid))).all()
        s.add(
            Order(
                number="dup",
                customer_id=order.customer_id,
                slip_type="subscription",
                received_on=due,
                payment_method="cod",
                subscription_id=sid,
                subscription_due_on=due,
            )
        )
        await s.flush()

    with pytest.raises(IntegrityError):
        in_db(database_url, duplicate)


def test_a_run_made_ahead_dates_each_subscription_by_its_own_day(database_url: str) -> None:
    """実行 for a later day also makes the days before it: each on its own due date, none
    later than it is due; an overdue one is made today, never dated in the past."""
    add_masters(database_url)
    cid = add_customer(database_url, "小城 直子", "オギ ナオコ", "0952-26-7777")
    today = D(2026, 6, 1)  # a Monday
    overdue = add_subscription(database_url, customer_id=cid, next_date=D(2026, 5, 28))
    tomorrow = add_subscription(database_url, customer_id=cid, next_date=D(2026, 6, 2))
    later = add_subscription(database_url, customer_id=cid, next_date=D(2026, 6, 3))
    result = run(database_url, D(2026, 6, 3), today=today)
    assert result.created == 3
    got = {
        sid: [
            (o.subscription_due_on, o.received_on, o.ship_on) for o in orders_of(database_url, sid)
        ]
        for sid in (overdue, tomorrow, later)
    }
    assert got[overdue] == [(D(2026, 5, 28), today, today)]
    assert got[tomorrow] == [(D(2026, 6, 2), D(2026, 6, 2), D(2026, 6, 2))]
    assert got[later] == [(D(2026, 6, 3), D(2026, 6, 3), D(2026, 6, 3))]


async def _day_list(url: str, day: dt.date, today: dt.date) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as s:
            result = await shipments(s, day=day, today=today)
            return [(r.state, r.customer_name) for r in result.rows]
    finally:
        await engine.dispose()


def test_an_overdue_subscription_is_on_the_list_of_the_day_it_is_made(database_url: str) -> None:
    add_masters(database_url)
    late = add_customer(database_url, "遅延 花子", "チエン ハナコ", "0952-26-1212")
    cid = add_customer(database_url, "当日 太郎", "トウジツ タロウ", "0952-26-3434")
    today = D(2026, 6, 1)
    add_subscription(database_url, customer_id=late, next_date=D(2026, 5, 29))
    add_subscription(database_url, customer_id=cid, next_date=today)
    before = run_async(_day_list(database_url, today, today))
    assert sorted(before) == [("pending", "当日 太郎"), ("pending", "遅延 花子")]
    run(database_url, today)
    after = run_async(_day_list(database_url, today, today))
    assert sorted(after) == [("made", "当日 太郎"), ("made", "遅延 花子")]
