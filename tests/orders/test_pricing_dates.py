"""Pricing and dates of an order."""

from __future__ import annotations

import datetime as dt

import pytest

from app.orders.dates import delivery_date, is_shipping_day, ship_date
from app.orders.pricing import PriceLine, quote

TONIC = PriceLine("10001", "健康トニック", 1, 6900)
TAPE = PriceLine("20001", "健康テープ", 2, 5800)
TEA = PriceLine("40001", "健康茶", 3, 1200, tax_class="reduced")


def test_standard_lines_with_shipping_and_cod() -> None:
    q = quote([TONIC, TAPE], shipping_fee=800, cod_fee=330)
    assert q.subtotal == 6900 + 11600
    # 10% of (18,500 + 800 + 330) = 1,963
    assert (q.tax_standard, q.tax_reduced) == (1963, 0)
    assert q.total == 18500 + 800 + 330 + 1963


def test_reduced_rate_food_is_taxed_at_8_percent_rounded_down() -> None:
    q = quote([TONIC, TEA], shipping_fee=0)
    assert q.tax_standard == 690 and q.tax_reduced == 288  # 3,600 × 8%
    q = quote([PriceLine("40002", "お茶", 1, 1234, tax_class="reduced")], shipping_fee=0)
    assert q.tax_reduced == 98  # 98.72 rounded down


def test_discount_comes_off_standard_first_and_never_below_zero() -> None:
    q = quote([TONIC, TEA], shipping_fee=0, discount=500)
    assert q.discount == 500 and q.tax_standard == 640 and q.tax_reduced == 288
    q = quote([TEA], shipping_fee=0, discount=99999)
    assert q.discount == 3600 and q.total == 0


def test_bad_quantities_are_refused_in_japanese() -> None:
    with pytest.raises(ValueError, match="数量は1以上"):
        quote([PriceLine("1", "x", 0, 100)], shipping_fee=0)


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        (dt.datetime(2025, 4, 1, 10, 0), dt.date(2025, 4, 1)),  # Tuesday morning: same day
        (dt.datetime(2025, 4, 1, 15, 0), dt.date(2025, 4, 2)),  # at the cut-off: next day
        (dt.datetime(2025, 4, 5, 16, 0), dt.date(2025, 4, 7)),  # Saturday late → Monday
        (dt.datetime(2025, 4, 28, 16, 0), dt.date(2025, 4, 30)),  # 4/29 昭和の日
        (dt.datetime(2025, 5, 2, 16, 0), dt.date(2025, 5, 7)),  # Golden Week
        (dt.datetime(2025, 12, 30, 16, 0), dt.date(2026, 1, 5)),  # year-end break, 1/4 Sunday
    ],
)
def test_ship_date_cutoff_sundays_holidays_and_year_end(
    received: dt.datetime, expected: dt.date
) -> None:
    assert ship_date(received) == expected


def test_closed_weekdays_are_configurable() -> None:
    assert not is_shipping_day(dt.date(2025, 4, 5), closed_weekdays=(5, 6))
    assert ship_date(dt.datetime(2025, 4, 5, 9, 0), closed_weekdays=(5, 6)) == dt.date(2025, 4, 7)


def test_delivery_date_adds_calendar_lead_days() -> None:
    assert delivery_date(dt.date(2025, 4, 5), 2) == dt.date(2025, 4, 7)
