"""出荷予定日 and お届け予定日 (O1): cut-off time, the warehouse's closed days, lead days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import jpholiday


def is_shipping_day(day: dt.date, *, closed_weekdays: Iterable[int] = (6,)) -> bool:
    """The warehouse ships on this day: not a closed weekday (0 = Monday … 6 = Sunday), not a
    national holiday, not the year-end/new-year break (12/31 – 1/3)."""
    if day.weekday() in set(closed_weekdays):
        return False
    if jpholiday.is_holiday(day):
        return False
    return not ((day.month == 12 and day.day == 31) or (day.month == 1 and day.day <= 3))


def ship_date(
    received_at: dt.datetime,
    *,
    cutoff: dt.time = dt.time(15, 0),
    closed_weekdays: Iterable[int] = (6,),
) -> dt.date:
    """The first shipping day on or after the day of receipt; after the cut-off, the day after.

    ``received_at`` is local (JST) time.
    """
    closed = tuple(closed_weekdays)
    day = received_at.date()
    if received_at.time() >= cutoff:
        day += dt.timedelta(days=1)
    while not is_shipping_day(day, closed_weekdays=closed):
        day += dt.timedelta(days=1)
    return day


def delivery_date(ship_on: dt.date, lead_days: int) -> dt.date:
    """お届け予定日: carriers deliver every day, so the lead days are calendar days."""
    return ship_on + dt.timedelta(days=max(0, lead_days))
