"""定期情報 (S1, S5) as the customer monitor shows it: a customer's subscriptions with their
labels (配送月 毎月 / 2ヶ月ごと, 配送日 10日 / 末日, 継続 / 休止中 / 解約), the next delivery date,
and the orders the subscriptions made (定期の配送履歴) with their delivery number.

Changing a subscription (interval, skip, pause, cancel) belongs to the subscription screens.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.dates import add_months
from app.masters.models import Carrier, Product
from app.orders.history import (
    PAYMENT_METHOD_LABELS,
    PurchasePage,
    carrier_label,
    purchase_lines,
)
from app.subscriptions.models import Subscription, SubscriptionItem

WEEKDAYS = "月火水木金土日"
STATUS_LABELS = {"active": "継続", "paused": "休止中", "cancelled": "解約"}
LAST_DAY = 31  # a delivery day of 31 means the month's last day (末日)


def interval_label(unit: str, n: int) -> str:
    """配送月: 毎月, 2ヶ月ごと, Nヶ月ごと; 毎週, N週ごと."""
    if unit == "week":
        return "毎週" if n == 1 else f"{n}週ごと"
    return "毎月" if n == 1 else f"{n}ヶ月ごと"


def day_label(unit: str, day_of_month: int, next_date: dt.date | None = None) -> str:
    """配送日: "10日", "末日" for 31; for weekly subscriptions the weekday of the next delivery."""
    if unit == "week":
        return f"{WEEKDAYS[next_date.weekday()]}曜日" if next_date is not None else "—"
    return "末日" if day_of_month >= LAST_DAY else f"{day_of_month}日"


def status_label(status: str, paused_until: dt.date | None = None) -> str:
    """継続 / 休止中（〜YYYY/MM/DD）/ 解約."""
    label = STATUS_LABELS.get(status, status)
    if status == "paused" and paused_until is not None:
        return f"{label}（〜{paused_until:%Y/%m/%d}）"
    return label


def next_due(
    *,
    start_month: dt.date,
    interval_unit: str,
    interval_n: int,
    day_of_month: int,
    on_or_after: dt.date,
) -> dt.date:
    """The first delivery date of the schedule on or after ``on_or_after``.

    Monthly: day ``day_of_month`` of the start month and every ``interval_n`` months after.
    Weekly: the start date and every ``interval_n`` weeks after.
    """
    n = max(1, interval_n)
    if interval_unit == "week":
        step = 7 * n
        gap = (on_or_after - start_month).days
        k = 0 if gap <= 0 else -(-gap // step)
        return start_month + dt.timedelta(days=k * step)
    months = (on_or_after.year - start_month.year) * 12 + on_or_after.month - start_month.month
    k = max(0, months // n)
    while True:
        due = add_months(start_month, k * n, day_of_month)
        if due >= on_or_after:
            return due
        k += 1


@dataclass
class SubscriptionItemView:
    product_code: str
    product_name: str
    quantity: int


@dataclass
class SubscriptionView:
    """One line of 定期申し込み状況."""

    id: int
    start_month: dt.date
    interval_unit: str
    interval_n: int
    day_of_month: int
    next_date: dt.date | None
    status: str
    paused_until: dt.date | None
    carrier: str
    payment_method: str
    cancel_reason: str
    items: list[SubscriptionItemView] = field(default_factory=list)

    @property
    def interval_label(self) -> str:
        return interval_label(self.interval_unit, self.interval_n)

    @property
    def day_label(self) -> str:
        return day_label(self.interval_unit, self.day_of_month, self.next_date)

    @property
    def status_label(self) -> str:
        return status_label(self.status, self.paused_until)

    @property
    def payment_label(self) -> str:
        return PAYMENT_METHOD_LABELS.get(self.payment_method, self.payment_method)

    @property
    def orderable(self) -> bool:
        """A 受注へ link makes sense (not for a cancelled subscription)."""
        return self.status != "cancelled"


def next_delivery(sub: Subscription, *, today: dt.date) -> dt.date | None:
    """次回配送日: the stored one (kept by the daily run), else computed from the schedule —
    after the pause for a paused subscription; none for a cancelled one."""
    if sub.status == "cancelled":
        return None
    if sub.next_date is not None:
        return sub.next_date
    start = today
    if sub.status == "paused" and sub.paused_until is not None:
        start = max(today, sub.paused_until + dt.timedelta(days=1))
    return next_due(
        start_month=sub.start_month,
        interval_unit=sub.interval_unit,
        interval_n=sub.interval_n,
        day_of_month=sub.day_of_month,
        on_or_after=start,
    )


async def customer_subscriptions(
    session: AsyncSession, *, customer_id: int, today: dt.date
) -> list[SubscriptionView]:
    """定期申し込み状況: the customer's subscriptions — running and paused ones first, then
    cancelled ones, each group by start month, newest first — with their products."""
    order = case((Subscription.status == "cancelled", 1), else_=0)
    rows = (
        await session.execute(
            select(Subscription, Carrier.name)
            .outerjoin(Carrier, Carrier.id == Subscription.carrier_id)
            .where(Subscription.customer_id == customer_id)
            .order_by(order, Subscription.start_month.desc(), Subscription.id.desc())
        )
    ).all()
    views = {
        sub.id: SubscriptionView(
            id=sub.id,
            start_month=sub.start_month,
            interval_unit=sub.interval_unit,
            interval_n=sub.interval_n,
            day_of_month=sub.day_of_month,
            next_date=next_delivery(sub, today=today),
            status=sub.status,
            paused_until=sub.paused_until,
            carrier=carrier_label(carrier),
            payment_method=sub.payment_method,
            cancel_reason=sub.cancel_reason,
        )
        for sub, carrier in rows
    }
    if views:
        items = await session.execute(
            select(
                SubscriptionItem.subscription_id,
                Product.code,
                Product.name,
                SubscriptionItem.quantity,
            )
            .join(Product, Product.id == SubscriptionItem.product_id)
            .where(SubscriptionItem.subscription_id.in_(list(views)))
            .order_by(SubscriptionItem.subscription_id, SubscriptionItem.id)
        )
        for sid, code, name, qty in items:
            views[sid].items.append(SubscriptionItemView(code, name, qty))
    return list(views.values())


async def delivery_history(
    session: AsyncSession,
    *,
    customer_id: int,
    page: int = 1,
    per_page: int = 50,
    subscription_id: int | None = None,
) -> PurchasePage:
    """定期の配送履歴: the orders the customer's subscriptions (or one of them) made, newest
    first, each with its lines and 何回目 (the delivery number within its subscription)."""
    return await purchase_lines(
        session,
        customer_id=customer_id,
        page=page,
        per_page=per_page,
        subscription_only=True,
        subscription_id=subscription_id,
    )


def following(*, interval_unit: str, interval_n: int, day_of_month: int, after: dt.date) -> dt.date:
    """The delivery after ``after`` (itself a delivery of the schedule): ``interval_n`` weeks
    later, or day ``day_of_month`` of the month ``interval_n`` months later (a day the month
    lacks falls to its last day)."""
    n = max(1, interval_n)
    if interval_unit == "week":
        return after + dt.timedelta(weeks=n)
    return add_months(after.replace(day=1), n, day_of_month)


def next_after(
    *, interval_unit: str, interval_n: int, day_of_month: int, due: dt.date, day: dt.date
) -> dt.date:
    """The first delivery of the schedule through ``due`` that comes after ``day``."""
    nxt = following(
        interval_unit=interval_unit, interval_n=interval_n, day_of_month=day_of_month, after=due
    )
    while nxt <= day:
        nxt = following(
            interval_unit=interval_unit,
            interval_n=interval_n,
            day_of_month=day_of_month,
            after=nxt,
        )
    return nxt
