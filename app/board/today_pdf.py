"""対応履歴一覧表: today's responses as a PDF for the leader's review (H5)."""

from __future__ import annotations

import datetime as dt
import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

from app.responses.service import TodayRow
from app.web import JST

FONT = "HeiseiKakuGo-W5"
HEADER = ("時刻", "区分", "種別", "担当者", "顧客", "内容", "回答", "状態")
WIDTHS = (16 * mm, 18 * mm, 14 * mm, 24 * mm, 38 * mm, 75 * mm, 75 * mm, 16 * mm)


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def today_pdf(rows: list[TodayRow], *, day: dt.date, subtitle: str = "") -> bytes:
    """The list as an A4 landscape PDF with a built-in Japanese font (no font files)."""
    font = _font()
    cell = ParagraphStyle("cell", fontName=font, fontSize=8, leading=10)
    title = ParagraphStyle("title", fontName=font, fontSize=14, leading=18)
    small = ParagraphStyle("small", fontName=font, fontSize=9, leading=12)

    def p(text: str) -> Paragraph:
        return Paragraph(escape(text).replace("\n", "<br/>"), cell)

    data: list[list[object]] = [[p(h) for h in HEADER]]
    for r in rows:
        customer = f"{r.customer_name}（{r.customer_code}）" if r.customer_code else r.customer_name
        data.append(
            [
                p(r.responded_at.astimezone(JST).strftime("%H:%M")),
                p(r.category),
                p(r.channel),
                p(r.staff_name),
                p(customer),
                p(r.content),
                p(r.answer),
                p(r.status_label),
            ]
        )
    table = Table(data, colWidths=WIDTHS, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=10 * mm,
        rightMargin=10 * mm,
        topMargin=10 * mm,
        bottomMargin=10 * mm,
        title=f"対応履歴一覧表 {day:%Y/%m/%d}",
    )
    heading = f"対応履歴一覧表　{day:%Y年%m月%d日}"
    info = f"{len(rows)} 件" + (f"　{subtitle}" if subtitle else "")
    doc.build([Paragraph(heading, title), Paragraph(info, small), table])
    return out.getvalue()
