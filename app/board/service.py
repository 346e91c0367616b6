"""The supervisor's live board (D3) and the status alerts (D4)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import Staff
from app.calls.models import Call, Presence
from app.calls.service import caller_label
from app.config import Settings
from app.customers.models import Customer
from app.dates import JST
from app.db import utcnow
from app.orders.models import VOID_STATUSES, Order
from app.outbound.service import DueCallback, overdue_callbacks
from app.responses.models import Action, Response
from app.templating import templates

OPERATOR_STATES = {
    "available": "待機",
    "ringing": "呼出中",
    "on_call": "通話中",
    "after_call": "後処理",
    "away": "離席",
    "offline": "ログオフ",
}
MISSED_SHOWN = 20
RINGING_SHOWN = 20


@dataclass
class OperatorRow:
    staff_id: int
    name: str
    extension: str
    line: str
    state: str
    since: dt.datetime
    customer: str = ""
    caller: str = ""
    role: str = "operator"

    @property
    def label(self) -> str:
        return OPERATOR_STATES.get(self.state, self.state)


@dataclass
class LineRow:
    line: str
    ringing: int = 0
    talking: int = 0
    waiting_operators: int = 0
    operators: int = 0


@dataclass
class CallRow:
    id: int
    started_at: dt.datetime
    caller: str
    customer: str
    customer_id: int | None
    line: str
    extension: str


@dataclass
class Counts:
    inbound: int = 0
    outbound: int = 0
    answered: int = 0
    missed: int = 0
    elsewhere: int = 0  # answered by a phone without an operator of ours (他で応答)
    orders: int = 0
    sales: int = 0


@dataclass
class OpenResponseAlert:
    response_id: int
    customer_id: int | None
    customer_name: str
    staff_name: str
    category: str
    since: dt.datetime
    call_id: int | None


@dataclass
class Alerts:
    callbacks: list[DueCallback] = field(default_factory=list)
    missed: list[CallRow] = field(default_factory=list)
    open_responses: list[OpenResponseAlert] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.callbacks) + len(self.missed) + len(self.open_responses)


@dataclass
class Board:
    at: dt.datetime
    operators: list[OperatorRow]
    lines: list[LineRow]
    ringing: list[CallRow]
    ringing_total: int
    missed: list[CallRow]
    missed_total: int
    counts: Counts
    alerts: Alerts


def day_start(now: dt.datetime | None = None) -> dt.datetime:
    """The start of today (JST) in UTC."""
    local = (now or utcnow()).astimezone(JST)
    return dt.datetime.combine(local.date(), dt.time(), JST).astimezone(dt.UTC)


def _call_row(call: Call, customer: str | None) -> CallRow:
    return CallRow(
        call.id,
        call.started_at,
        caller_label(call),
        customer or "",
        call.customer_id,
        call.line,
        call.extension,
    )


async def today_counts(session: AsyncSession) -> Counts:
    """Today's calls, outbound attempts, orders and sales."""
    start = day_start()
    today = start.astimezone(JST).date()
    c = Counts()
    row = (
        await session.execute(
            select(
                func.count().filter(Call.direction == "in"),
                func.count().filter(Call.direction == "in", Call.answered_at.is_not(None)),
                func.count().filter(Call.state == "missed"),
                func.count().filter(
                    Call.direction == "in",
                    Call.state == "ended",
                    Call.staff_id.is_(None),
                    Call.answered_at.is_not(None),
                ),
            ).where(Call.started_at >= start)
        )
    ).one()
    c.inbound, c.answered, c.missed = int(row[0]), int(row[1]), int(row[2])
    c.elsewhere = int(row[3])
    c.outbound = int(
        await session.scalar(
            select(func.count())
            .select_from(Action)
            .where(Action.kind == "call_out", Action.occurred_at >= start)
        )
        or 0
    )
    orders = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Order.total), 0)).where(
                Order.received_on == today, Order.status.not_in(VOID_STATUSES)
            )
        )
    ).one()
    c.orders, c.sales = int(orders[0]), int(orders[1])
    return c


async def status_alerts(session: AsyncSession, *, settings: Settings) -> Alerts:
    """Call-backs past due (work lists and missed calls) and responses left open too long."""
    now = utcnow()
    grace = settings.alerts.callback_grace_minutes
    alerts = Alerts(callbacks=await overdue_callbacks(session, grace_minutes=grace))
    missed = (
        await session.execute(
            select(Call, Customer.name)
            .outerjoin(Customer, Customer.id == Call.customer_id)
            .where(
                Call.callback_status == "pending",
                Call.started_at < now - dt.timedelta(minutes=grace),
            )
            .order_by(Call.started_at)
            .limit(50)
        )
    ).all()
    alerts.missed = [_call_row(call, name) for call, name in missed]
    limit = now - dt.timedelta(minutes=settings.alerts.open_response_minutes)
    rows = (
        await session.execute(
            select(Response, Customer.name, Staff.name)
            .outerjoin(Customer, Customer.id == Response.customer_id)
            .outerjoin(Staff, Staff.id == Response.staff_id)
            .where(Response.status == "open", Response.created_at < limit)
            .order_by(Response.created_at)
            .limit(50)
        )
    ).all()
    alerts.open_responses = [
        OpenResponseAlert(
            r.id, r.customer_id, cname or "", sname or "", r.category, r.created_at, r.call_id
        )
        for r, cname, sname in rows
    ]
    return alerts


async def board(session: AsyncSession, *, settings: Settings) -> Board:
    """Everything the live board shows, read in a handful of indexed statements."""
    now = utcnow()
    since = now - dt.timedelta(seconds=settings.cti.ring_timeout_s)
    ringing_rows = (
        await session.execute(
            select(Call, Customer.name)
            .outerjoin(Customer, Customer.id == Call.customer_id)
            .where(Call.state == "ringing", Call.started_at >= since)
            .order_by(Call.started_at)
        )
    ).all()
    active_rows = (
        await session.execute(
            select(Call, Customer.name)
            .outerjoin(Customer, Customer.id == Call.customer_id)
            .where(Call.state == "answered", Call.started_at >= now - dt.timedelta(hours=12))
        )
    ).all()
    on_call: dict[int, tuple[Call, str | None]] = {
        call.staff_id: (call, name) for call, name in active_rows if call.staff_id
    }
    rung: dict[int, tuple[Call, str | None]] = {}
    for call, name in ringing_rows:
        for sid in call.targets or []:
            rung.setdefault(sid, (call, name))
    staff_rows = (
        await session.execute(
            select(Staff, Presence)
            .outerjoin(Presence, Presence.staff_id == Staff.id)
            .where(Staff.active.is_(True), Staff.role.in_(("operator", "supervisor")))
            .order_by(Staff.id)
        )
    ).all()
    operators: list[OperatorRow] = []
    lines: dict[str, LineRow] = {}
    for staff, presence in staff_rows:
        state = presence.state if presence is not None else "offline"
        if presence is None and staff.role != "operator":
            continue
        row = OperatorRow(
            staff.id,
            staff.name,
            presence.extension if presence is not None else staff.extension,
            presence.line if presence is not None else staff.line,
            state,
            presence.since if presence is not None else now,
            role=staff.role,
        )
        if staff.id in on_call:
            call, cname = on_call[staff.id]
            row.state, row.since = "on_call", call.answered_at or call.started_at
            row.customer, row.caller = cname or "", caller_label(call)
        elif staff.id in rung and state != "offline":
            call, cname = rung[staff.id]
            row.state, row.since = "ringing", call.started_at
            row.customer, row.caller = cname or "", caller_label(call)
        operators.append(row)
        if row.state != "offline":
            line = lines.setdefault(row.line, LineRow(row.line))
            line.operators += 1
            line.waiting_operators += row.state == "available"
    for call, _ in ringing_rows:
        lines.setdefault(call.line, LineRow(call.line)).ringing += 1
    for call, _ in active_rows:
        lines.setdefault(call.line, LineRow(call.line)).talking += 1
    for source in settings.cti.sources:
        if source.line:
            lines.setdefault(source.line, LineRow(source.line))
    # A stable order (operators, then supervisors, by id): rows are updated in place.
    operators.sort(key=lambda o: (o.role != "operator", o.staff_id))
    missed_rows = (
        await session.execute(
            select(Call, Customer.name)
            .outerjoin(Customer, Customer.id == Call.customer_id)
            .where(Call.callback_status == "pending")
            .order_by(Call.started_at.desc())
            .limit(MISSED_SHOWN)
        )
    ).all()
    missed_total = int(
        await session.scalar(
            select(func.count()).select_from(Call).where(Call.callback_status == "pending")
        )
        or 0
    )
    return Board(
        at=now,
        operators=operators,
        lines=sorted(lines.values(), key=lambda x: x.line),
        ringing=[_call_row(c, n) for c, n in ringing_rows[:RINGING_SHOWN]],
        ringing_total=len(ringing_rows),
        missed=[_call_row(c, n) for c, n in missed_rows],
        missed_total=missed_total,
        counts=await today_counts(session),
        alerts=await status_alerts(session, settings=settings),
    )


def render_board(data: Board, *, oob: bool) -> str:
    """The live part of the board; ``oob`` for a websocket push (replaces it in place)."""
    return templates.env.get_template("board/_live.html").render(board=data, oob=oob)


def _pieces_module() -> Any:
    return templates.env.get_template("board/_pieces.html").make_module({})


def render_pieces(data: Board) -> dict[str, str]:
    """Each piece of the board by its element id, rendered for an out-of-band swap."""
    m = _pieces_module()
    out = {
        "board-counts": str(m.counts(data, True)),
        "board-lines": str(m.lines(data, True)),
        "board-queue": str(m.queue(data, True)),
        "board-missed": str(m.missed(data, True)),
        "board-alerts": str(m.alerts_piece(data, True)),
    }
    for op in data.operators:
        out[f"operator-{op.staff_id}"] = str(m.operator_row(op, True))
    return out


def render_operators(data: Board) -> str:
    """The whole operator table (when operators came or went)."""
    return str(_pieces_module().operators(data, True))
