"""Builders for the subscription and job tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import OrdersConfig
from app.db import make_engine, make_sessionmaker
from app.masters.models import Carrier, Product
from app.orders.models import Order
from app.subscriptions.daily import RunResult, run_daily
from app.subscriptions.models import Subscription, SubscriptionItem
from tests.conftest import run_async
from tests.orders.test_history import in_db


def add_subscription(
    url: str,
    *,
    customer_id: int,
    next_date: dt.date,
    products: tuple[tuple[str, int], ...] = (("10001", 1),),
    unit: str = "month",
    n: int = 1,
    day: int | None = None,
    carrier: str = "yamato",
    status: str = "active",
    paused_until: dt.date | None = None,
    payment: str = "cod",
    unit_price: int | None = None,
) -> int:
    """A subscription with its items (the product price unless ``unit_price``)."""

    async def go(s: AsyncSession) -> int:
        carrier_id = await s.scalar(select(Carrier.id).where(Carrier.code == carrier))
        sub = Subscription(
            customer_id=customer_id,
            start_month=next_date.replace(day=1),
            interval_unit=unit,
            interval_n=n,
            day_of_month=day if day is not None else next_date.day,
            next_date=next_date,
            status=status,
            paused_until=paused_until,
            carrier_id=carrier_id,
            payment_method=payment,
        )
        for code, qty in products:
            p = await s.scalar(select(Product).where(Product.code == code))
            assert p is not None, code
            price = unit_price if unit_price is not None else p.price
            sub.items.append(SubscriptionItem(product_id=p.id, quantity=qty, unit_price=price))
        s.add(sub)
        await s.flush()
        return sub.id

    return int(in_db(url, go))


def run(url: str, day: dt.date, *, today: dt.date | None = None) -> RunResult:
    """The daily run for ``day`` on the test database (run on ``today``, default ``day``)."""

    async def go() -> RunResult:
        engine = make_engine(url)
        try:
            return await run_daily(
                make_sessionmaker(engine), day=day, today=today or day, orders=OrdersConfig()
            )
        finally:
            await engine.dispose()

    result: RunResult = run_async(go())
    return result


def subscription(url: str, sid: int) -> Subscription:
    async def go(s: AsyncSession) -> Subscription:
        sub = await s.get(Subscription, sid)
        assert sub is not None
        return sub

    sub: Subscription = in_db(url, go)
    return sub


def orders_of(url: str, sid: int) -> list[Order]:
    async def go(s: AsyncSession) -> list[Order]:
        return list(
            await s.scalars(
                select(Order)
                .where(Order.subscription_id == sid)
                .order_by(Order.subscription_due_on)
            )
        )

    found: list[Order] = in_db(url, go)
    return found


def count_orders(url: str) -> int:
    async def go(s: AsyncSession) -> int:
        return int(await s.scalar(select(func.count()).select_from(Order)) or 0)

    return int(in_db(url, go))


def lines_of(url: str, order_id: int) -> list[tuple[Any, ...]]:
    from app.orders.models import OrderLine

    async def go(s: AsyncSession) -> list[tuple[Any, ...]]:
        rows = await s.execute(
            select(
                OrderLine.product_code,
                OrderLine.quantity,
                OrderLine.unit_price,
                OrderLine.parent_position,
            )
            .where(OrderLine.order_id == order_id)
            .order_by(OrderLine.position)
        )
        return [tuple(r) for r in rows]

    found: list[tuple[Any, ...]] = in_db(url, go)
    return found
