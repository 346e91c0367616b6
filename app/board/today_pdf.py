"""対応履歴一覧表: today's responses as a PDF for the leader's review (H5)."""

from __future__ import annotations

import datetime as dt

from app.dates import JST
from app.pdf import table_pdf
from app.responses.service import TodayRow

HEADER = ("時刻", "区分", "種別", "担当者", "顧客", "内容", "回答", "状態")
WIDTHS_MM = (16, 18, 14, 24, 38, 75, 75, 16)


def today_pdf(rows: list[TodayRow], *, day: dt.date, subtitle: str = "") -> bytes:
    """The list as an A4 landscape PDF with a built-in Japanese font (no font files)."""
    return table_pdf(
        title=f"対応履歴一覧表 {day:%Y/%m/%d}",
        heading=f"対応履歴一覧表　{day:%Y年%m月%d日}",
        info=f"{len(rows)} 件" + (f"　{subtitle}" if subtitle else ""),
        header=HEADER,
        rows=[
            [
                r.responded_at.astimezone(JST).strftime("%H:%M"),
                r.category,
                r.channel,
                r.staff_name,
                f"{r.customer_name}（{r.customer_code}）" if r.customer_code else r.customer_name,
                r.content,
                r.answer,
                r.status_label,
            ]
            for r in rows
        ],
        widths_mm=WIDTHS_MM,
    )
