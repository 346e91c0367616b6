"""Board screens: the supervisor's live board and its websocket."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.audit.service import record
from app.auth.models import Staff
from app.auth.sessions import session_state, watch_socket
from app.board.notify import BOARD_TOPIC, RESPONSES_TOPIC
from app.board.service import board, render_board
from app.board.today_pdf import today_pdf
from app.config import Settings
from app.dates import parse_date
from app.db import transaction
from app.hub import Hub
from app.inputs import ascii_int
from app.responses.models import RESPONSE_CATEGORIES
from app.responses.service import day_responses
from app.security import requires_role
from app.web import JST, current_staff, db, render

# Topic → the roles that may subscribe to it.
TOPICS = {
    BOARD_TOPIC: ("supervisor",),
    RESPONSES_TOPIC: ("operator", "supervisor"),
}
# 対応履歴一覧表 (PDF): everyone's responses of a day as a file to print or pass on, for
# leaders only (FEATURES H5); operators keep the screen.
PDF_ROLES = ("supervisor",)  # admin always


def _settings(request: Request | WebSocket) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@requires_role("supervisor")
async def board_page(request: Request) -> Response:
    """ボード: every line and operator, ringing and missed calls, today's counts, alerts."""
    data = await board(db(request), settings=_settings(request))
    return render(request, "board", {"board": data})


async def board_ws(ws: WebSocket) -> None:
    """A page's live feed of one topic (``?topic=board`` or ``?topic=responses``). The board
    is sent at once on (re)connect, then whenever it changes."""
    staff = current_staff(ws)
    topic = ws.query_params.get("topic", BOARD_TOPIC)
    if staff is None or topic not in TOPICS or not staff.has_role(*TOPICS[topic]):
        await ws.close(code=4403)
        return
    hub: Hub = ws.app.state.hub
    await ws.accept()
    # Closed with the staff member's sessions (log-out, retirement, role or password change),
    # on every process, like the pops' socket.
    hub.own(staff.id, ws, session=session_state(ws).id_hash or "")
    hub.subscribe(topic, ws)
    try:
        if topic == BOARD_TOPIC:
            async with transaction(ws.app.state.sessionmaker) as session:
                html = render_board(await board(session, settings=_settings(ws)), oob=True)
            await ws.send_text(html)
        await watch_socket(ws, ws.app.state.engine, idle_s=_settings(ws).server.session_idle_s)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unsubscribe(topic, ws)
        hub.unregister(staff.id, ws)


async def _today_context(request: Request) -> tuple[dict[str, Any], dict[str, str]]:
    q = request.query_params
    values = {k: q.get(k, "").strip() for k in ("date", "cat", "staff")}
    errors: dict[str, str] = {}
    today = dt.datetime.now(JST).date()
    try:
        day = parse_date(values["date"]) or today
    except ValueError:
        errors["date"] = "日付は YYYY/MM/DD の形式で入力してください。"
        day = today
    if values["cat"] and values["cat"] not in RESPONSE_CATEGORIES:
        errors["cat"] = "区分を選んでください。"
    staff_id = ascii_int(values["staff"])
    session = db(request)
    me = current_staff(request)
    staff = (
        await session.execute(
            select(Staff.id, Staff.name)
            .where(Staff.active.is_(True), Staff.role.in_(("operator", "supervisor")))
            .order_by(Staff.id)
        )
    ).all()
    rows = (
        []
        if errors
        else await day_responses(
            session, day=day, category=values["cat"] if not errors else "", staff_id=staff_id
        )
    )
    query = urlencode({"date": day.isoformat(), "cat": values["cat"], "staff": values["staff"]})
    ctx = {
        "rows": rows,
        "day": day,
        "values": values,
        "errors": errors,
        "categories": RESPONSE_CATEGORIES,
        "staff_options": staff,
        "pdf_url": f"/responses/today.pdf?{query}",
        "may_print": me is not None and me.has_role(*PDF_ROLES),
        "is_today": day == today,
    }
    return ctx, errors


@requires_role("operator", "supervisor")
async def today_page(request: Request) -> Response:
    """本日の対応: every 対応履歴 of the day, by 区分 and 担当者, updating live (H5)."""
    ctx, errors = await _today_context(request)
    return render(request, "board/today", ctx, status_code=400 if errors else 200)


@requires_role(*PDF_ROLES)
async def today_pdf_download(request: Request) -> Response:
    """対応履歴一覧表 (PDF) of the same list."""
    ctx, errors = await _today_context(request)
    if errors:
        return render(request, "board/today", ctx, status_code=400)
    parts = []
    if ctx["values"]["cat"]:
        parts.append(f"区分: {ctx['values']['cat']}")
    if ctx["values"]["staff"]:
        name = next((n for i, n in ctx["staff_options"] if str(i) == ctx["values"]["staff"]), "")
        parts.append(f"担当者: {name}")
    day: dt.date = ctx["day"]
    me = current_staff(request)
    await record(
        db(request),
        action="export_today_responses",
        entity="response",
        staff_id=me.id if me else None,
        changes={"date": day.isoformat(), **ctx["values"], "rows": len(ctx["rows"])},
        ip=request.client.host if request.client else "",
    )
    # reportlab is CPU work: off the event loop, so screen pops are not held up.
    pdf = await run_in_threadpool(today_pdf, ctx["rows"], day=day, subtitle="　".join(parts))
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="responses_{day:%Y%m%d}.pdf"'},
    )


routes: list[BaseRoute] = [
    Route("/board", board_page, methods=["GET"]),
    Route("/responses/today", today_page, methods=["GET"]),
    Route("/responses/today.pdf", today_pdf_download, methods=["GET"]),
    WebSocketRoute("/board/ws", board_ws),
]
