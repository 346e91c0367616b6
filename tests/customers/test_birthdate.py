"""Birth dates typed in 西暦 or 和暦."""

from __future__ import annotations

import datetime as dt

import pytest

from app.customers.birthdate import parse_birth_date, wareki

TODAY = dt.date(2026, 11, 23)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("1970/4/1", dt.date(1970, 4, 1)),
        ("1970-04-01", dt.date(1970, 4, 1)),
        ("19700401", dt.date(1970, 4, 1)),
        ("１９７０年４月１日", dt.date(1970, 4, 1)),
        ("昭和45年4月1日", dt.date(1970, 4, 1)),
        ("S45.4.1", dt.date(1970, 4, 1)),
        ("s45/4/1", dt.date(1970, 4, 1)),
        ("昭45.4.1", dt.date(1970, 4, 1)),
        ("Ｓ４５．４．１", dt.date(1970, 4, 1)),
        ("平成元年1月8日", dt.date(1989, 1, 8)),
        ("H2.1.8", dt.date(1990, 1, 8)),
        ("大正15年12月24日", dt.date(1926, 12, 24)),
        ("令和元年5月1日", dt.date(2019, 5, 1)),
        ("", None),
    ],
)
def test_accepted_forms(typed: str, expected: dt.date | None) -> None:
    assert parse_birth_date(typed, today=TODAY) == expected


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("昭和64年1月8日", "昭和の期間外"),
        ("平成31年5月1日", "平成の期間外"),
        ("S45.2.30", "存在しない日付"),
        ("2030/1/1", "未来の日付"),
        ("そのうち", "S45.4.1 のように入力してください"),
    ],
)
def test_refused_with_a_japanese_message(typed: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_birth_date(typed, today=TODAY)


def test_wareki_display() -> None:
    assert wareki(dt.date(1970, 4, 1)) == "昭和45年4月1日"
    assert wareki(dt.date(1989, 1, 8)) == "平成元年1月8日"
