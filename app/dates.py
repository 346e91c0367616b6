"""Dates as staff type them, and the window a typed date must fall in.

One parser for every typed date (受注, 定期, 対応履歴, filters, masters): ``2025/04/07``,
``2025-4-7``, ``2025.4.7``, ``2025年4月7日``, ``20250407`` (full-width digits too) and, where
the caller gives ``today``, ``4/7``, ``4月7日`` or ``0407``. Whatever is typed, a date outside
:data:`EARLIEST`–:data:`LATEST` is refused like a non-date, so an absurd year (9999/12/31,
0001/01/01) never reaches a query or date arithmetic. Stored dates are then checked against
their own, business window with :func:`window_error` (e.g. お届け予定日 within a year of the
受付日).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from zoneinfo import ZoneInfo

__all__ = [
    "EARLIEST",
    "JST",
    "LATEST",
    "add_months",
    "add_years",
    "parse_date",
    "today_jst",
    "window_error",
]

# The call centres' time zone: "today", business days and the dates staff type are JST.
JST = ZoneInfo("Asia/Tokyo")

# No date typed into YEBISU is meaningful outside these (birth dates included).
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2199, 12, 31)

_FULL = re.compile(r"(\d{4})\s*[/\-.年]\s*(\d{1,2})\s*[/\-.月]\s*(\d{1,2})\s*日?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_SHORT = re.compile(r"(\d{1,2})\s*[/\-.月]\s*(\d{1,2})\s*日?")
_SHORT_COMPACT = re.compile(r"(\d{2})(\d{2})")


def parse_date(text: str, *, today: dt.date | None = None) -> dt.date | None:
    """The date in ``text``; None when it is blank.

    With ``today``, a date without a year takes today's year, or the next one when that would
    be more than half a year back. Raises ValueError when ``text`` is no date, an impossible
    one (2025/02/30) or one outside EARLIEST–LATEST.
    """
    value = unicodedata.normalize("NFKC", text or "").strip()
    if not value:
        return None
    m = _FULL.fullmatch(value) or _COMPACT.fullmatch(value)
    if m is not None:
        day = dt.date(int(m[1]), int(m[2]), int(m[3]))  # ValueError when impossible
    elif today is not None and (m := _SHORT.fullmatch(value) or _SHORT_COMPACT.fullmatch(value)):
        day = dt.date(today.year, int(m[1]), int(m[2]))
        if day < today - dt.timedelta(days=183):
            day = dt.date(today.year + 1, day.month, day.day)
    else:
        raise ValueError(value)
    if not EARLIEST <= day <= LATEST:
        raise ValueError(value)
    return day


def add_years(day: dt.date, years: int) -> dt.date:
    """``day`` moved by whole years (29 February becomes the 28th in other years)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def add_months(day: dt.date, months: int, day_of_month: int) -> dt.date:
    """Day ``day_of_month`` of the month ``months`` after ``day``'s month; a day the month
    lacks falls to its last day (the 31st of June is June 30th)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day_of_month, last))


def today_jst() -> dt.date:
    """Today's date in Japan (whatever the server's own time zone)."""
    return dt.datetime.now(JST).date()


def window_error(
    day: dt.date, *, around: dt.date, years: int = 1, label: str, base: str = ""
) -> str:
    """The Japanese message when ``day`` is more than ``years`` before or after ``around``
    (``base`` names it, e.g. 受付日; else today), or ""."""
    lo, hi = add_years(around, -years), add_years(around, years)
    if lo <= day <= hi:
        return ""
    if base:
        return f"{label}は{base}の前後{years}年以内の日付を入力してください。"
    return f"{label}は {lo:%Y/%m/%d} から {hi:%Y/%m/%d} までの日付を入力してください。"
