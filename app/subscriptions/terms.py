"""The terms of a subscription that must be read to the customer before it is confirmed or
changed: the price of later deliveries, when the next shipments are, and how to cancel."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from app.subscriptions.service import day_label, interval_label, next_due

CANCEL_TEXT = (
    "次回お届け日の7日前までにお電話いただければ、変更・休止・解約ができます。"
    "回数のお約束はありません。"
)


@dataclass(frozen=True)
class Terms:
    interval_label: str
    day_label: str
    next_dates: list[dt.date] = field(default_factory=list)  # the coming deliveries
    later_total: int = 0  # one later delivery, tax and shipping included (yen)
    cancel_text: str = CANCEL_TEXT


@dataclass(frozen=True)
class PendingDelivery:
    """An order the subscription has already made that has not reached the customer yet."""

    number: str
    deliver_on: dt.date | None  # お届け予定日 (else the 出荷予定日 below)
    ship_on: dt.date | None


@dataclass(frozen=True)
class CancelTerms:
    """What is read to the customer before a cancellation: the deliveries that stop, the ones
    already on their way that a cancellation does not stop, and the alternatives."""

    next_date: dt.date | None  # 次回配送日: the first delivery that will not come
    paused: bool = False
    pending: list[PendingDelivery] = field(default_factory=list)


def subscription_terms(
    *,
    interval_unit: str,
    interval_n: int,
    day_of_month: int,
    start_month: dt.date,
    on_or_after: dt.date,
    later_total: int,
    count: int = 3,
) -> Terms:
    """The terms for a schedule: the next ``count`` delivery dates on or after ``on_or_after``
    and the price of each later delivery."""
    dates: list[dt.date] = []
    day = on_or_after
    for _ in range(count):
        due = next_due(
            start_month=start_month,
            interval_unit=interval_unit,
            interval_n=interval_n,
            day_of_month=day_of_month,
            on_or_after=day,
        )
        dates.append(due)
        day = due + dt.timedelta(days=1)
    return Terms(
        interval_label=interval_label(interval_unit, interval_n),
        day_label=day_label(interval_unit, day_of_month, dates[0] if dates else None),
        next_dates=dates,
        later_total=later_total,
    )
