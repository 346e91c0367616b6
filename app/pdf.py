"""Printed lists (帳票): an A4 landscape table with Japanese text in reportlab's built-in CID
font (no font files to ship), a heading and a summary line."""

from __future__ import annotations

import io
from collections.abc import Sequence
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT = "HeiseiKakuGo-W5"


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def table_pdf(
    *,
    title: str,
    heading: str,
    info: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    widths_mm: Sequence[float],
    right: Sequence[int] = (),
) -> bytes:
    """The table as a PDF: ``header`` repeated on every page, each cell's text escaped (a
    newline breaks the line), the columns in ``right`` aligned right."""
    font = _font()
    cell = ParagraphStyle("cell", fontName=font, fontSize=8, leading=10)

    def p(text: str) -> Paragraph:
        return Paragraph(escape(text).replace("\n", "<br/>"), cell)

    table = Table(
        [[p(h) for h in header], *([p(c) for c in row] for row in rows)],
        colWidths=[w * mm for w in widths_mm],
        repeatRows=1,
    )
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                *(("ALIGN", (c, 1), (c, -1), "RIGHT") for c in right),
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
        title=title,
    )
    doc.build(
        [
            Paragraph(
                escape(heading), ParagraphStyle("title", fontName=font, fontSize=14, leading=18)
            ),
            Paragraph(escape(info), ParagraphStyle("small", fontName=font, fontSize=9, leading=12)),
            Spacer(1, 3 * mm),
            table,
        ]
    )
    return out.getvalue()
