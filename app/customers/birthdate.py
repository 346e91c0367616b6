"""Birth dates as operators type them: 西暦 (1970/4/1, 1970-04-01, 19700401) or 和暦
(昭和45年4月1日, S45.4.1, 昭45/4/1, 平成元年1月8日), full-width digits included."""

from __future__ import annotations

import datetime as dt
import re

from app.inputs import normalise

# (kanji, letter, first day, last day)
ERAS = (
    ("明治", "M", dt.date(1868, 10, 23), dt.date(1912, 7, 29)),
    ("大正", "T", dt.date(1912, 7, 30), dt.date(1926, 12, 24)),
    ("昭和", "S", dt.date(1926, 12, 25), dt.date(1989, 1, 7)),
    ("平成", "H", dt.date(1989, 1, 8), dt.date(2019, 4, 30)),
    ("令和", "R", dt.date(2019, 5, 1), dt.date(9999, 12, 31)),
)
_ERA_BY_NAME = {**{e[0]: e for e in ERAS}, **{e[0][0]: e for e in ERAS}, **{e[1]: e for e in ERAS}}

_WAREKI = re.compile(
    r"^(?P<era>明治|大正|昭和|平成|令和|[明大昭平令]|[MTSHR])\s*(?P<y>元|\d{1,2})\s*[年./\-]\s*"
    r"(?P<m>\d{1,2})\s*[月./\-]\s*(?P<d>\d{1,2})\s*日?$",
    re.IGNORECASE,
)
_SEIREKI = re.compile(
    r"^(?P<y>\d{4})\s*[年./\-]?\s*(?P<m>\d{1,2})\s*[月./\-]?\s*(?P<d>\d{1,2})\s*日?$"
)

BAD = "生年月日は 1970/4/1、昭和45年4月1日、S45.4.1 のように入力してください。"


def parse_birth_date(text: str, *, today: dt.date | None = None) -> dt.date | None:
    """The date typed, or ``None`` for an empty field; ValueError with a Japanese message."""
    value = normalise(text)
    if not value:
        return None
    m = _WAREKI.match(value)
    if m:
        era = _ERA_BY_NAME[m.group("era").upper() if m.group("era").isascii() else m.group("era")]
        name, _letter, first, last = era
        year_in_era = 1 if m.group("y") == "元" else int(m.group("y"))
        try:
            day = dt.date(first.year + year_in_era - 1, int(m.group("m")), int(m.group("d")))
        except ValueError:
            raise ValueError("存在しない日付です。") from None
        if year_in_era < 1 or not first <= day <= last:
            raise ValueError(
                f"{name}{m.group('y')}年{m.group('m')}月{m.group('d')}日は{name}の期間外です。"
            )
    else:
        m = _SEIREKI.match(value)
        if not m:
            raise ValueError(BAD)
        try:
            day = dt.date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
        except ValueError:
            raise ValueError("存在しない日付です。") from None
    today = today or dt.date.today()
    if day > today:
        raise ValueError("生年月日が未来の日付です。")
    if day.year < 1868:
        raise ValueError(BAD)
    return day


def wareki(day: dt.date) -> str:
    """昭和45年4月1日 for display next to the 西暦 date."""
    for name, _letter, first, last in ERAS:
        if first <= day <= last:
            year = day.year - first.year + 1
            return f"{name}{'元' if year == 1 else year}年{day.month}月{day.day}日"
    return day.strftime("%Y年%m月%d日")
