"""対応履歴 (H1), FAQ search (H2) and アクション履歴 with the sales that followed (H3)."""

from __future__ import annotations

import bisect
import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app import dates
from app.auth.models import Staff
from app.customers.models import Customer
from app.dates import JST
from app.db import utcnow
from app.inputs import normalise
from app.orders.models import Order
from app.responses.models import (
    ACTION_KINDS,
    RESPONSE_CATEGORIES,
    RESPONSE_CHANNELS,
    Action,
    Faq,
    Response,
)

PAGE_SIZE = 50
STATUSES = {"done": "完了", "open": "未完了"}
# Approaches whose effect on sales is measured (H3): DM, カタログ, 電話 (outbound), メール.
OUTBOUND_KINDS = ("dm", "catalog", "call_out", "mail")
ATTRIBUTION_DAYS = 30
LOST_ORDER_STATUSES = ("cancelled", "returned")
DUPLICATE_WINDOW = dt.timedelta(minutes=2)

T = TypeVar("T")


class ResponseInputError(ValueError):
    """Bad input: ``errors`` maps each field to its Japanese message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


# --- dates typed by operators -------------------------------------------------------------

_TIME = re.compile(r"^(\d{1,2})\s*[:時]\s*(\d{1,2})\s*分?(?:\s*:\s*(\d{1,2}))?$")


def parse_datetime(text: str) -> dt.datetime | None:
    """A JST date and time typed as ``2015/01/01 10:30`` (or ``2015-01-01T10:30``; a date
    alone is midnight), returned in UTC; None when empty. Raises ValueError otherwise."""
    value = normalise(text)
    if not value:
        return None
    date_part, _, time_part = value.replace("T", " ").partition(" ")
    day = dates.parse_date(date_part)
    assert day is not None
    clock = dt.time()
    if time_part.strip():
        m = _TIME.match(time_part.strip())
        if m is None:
            raise ValueError(value)
        clock = dt.time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    return dt.datetime.combine(day, clock, JST).astimezone(dt.UTC)


def format_date(day: dt.date | None) -> str:
    return day.strftime("%Y/%m/%d") if day else ""


@dataclass
class DateRange:
    """A range of JST days, both ends included; None is open."""

    start: dt.date | None
    end: dt.date | None

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        lo = dt.datetime.combine(self.start, dt.time(), JST) if self.start else None
        hi = (
            dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), JST)
            if self.end
            else None
        )
        return lo, hi

    def contains(self, moment: dt.datetime) -> bool:
        lo, hi = self.bounds()
        return (lo is None or moment >= lo) and (hi is None or moment < hi)


def default_range(today: dt.date) -> DateRange:
    """The last 12 months up to ``today``."""
    try:
        start = today.replace(year=today.year - 1)
    except ValueError:  # 29 February
        start = today.replace(year=today.year - 1, day=28)
    return DateRange(start + dt.timedelta(days=1), today)


def parse_range(
    start: str | None, end: str | None, *, today: dt.date
) -> tuple[DateRange, dict[str, str]]:
    """The filter's 対応日 from–to. Both absent (first visit): the last 12 months; a blank end
    is open. Returns the range (the default where the input was bad) and per-field errors."""
    if start is None and end is None:
        return default_range(today), {}
    errors: dict[str, str] = {}
    days: list[dt.date | None] = []
    for key, text in (("from", start or ""), ("to", end or "")):
        try:
            days.append(dates.parse_date(text))
        except ValueError:
            errors[key] = "日付は 2015/01/01 の形式で入力してください。"
            days.append(None)
    lo, hi = days
    if not errors and lo and hi and lo > hi:
        errors["to"] = "終了日は開始日以降の日付を入力してください。"
    if errors:
        return default_range(today), errors
    return DateRange(lo, hi), {}


# --- pages ---------------------------------------------------------------------------------


@dataclass
class Page(Generic[T]):
    rows: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first_no(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.per_page + 1

    @property
    def last_no(self) -> int:
        return min(self.total, self.page * self.per_page)


def _clamp_page(page: int, total: int, per_page: int) -> int:
    return min(max(1, page), max(1, math.ceil(total / per_page)))


# --- responses (H1) ------------------------------------------------------------------------


@dataclass
class ResponseRow:
    id: int
    responded_at: dt.datetime
    category: str
    channel: str
    staff_id: int | None
    staff_name: str
    content: str
    answer: str
    status: str
    call_id: int | None

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def status_label(self) -> str:
        return STATUSES.get(self.status, self.status)


def _response_row(r: Response, staff_name: str | None) -> ResponseRow:
    return ResponseRow(
        id=r.id,
        responded_at=r.responded_at,
        category=r.category,
        channel=r.channel,
        staff_id=r.staff_id,
        staff_name=staff_name or "",
        content=r.content,
        answer=r.answer,
        status=r.status,
        call_id=r.call_id,
    )


async def list_responses(
    session: AsyncSession,
    *,
    customer_id: int,
    dates: DateRange,
    category: str = "",
    channel: str = "",
    page: int = 1,
    per_page: int = PAGE_SIZE,
) -> Page[ResponseRow]:
    """One customer's 対応履歴, newest first, filtered by JST days, 区分 and 種別 (empty: all)."""
    conds: list[Any] = [Response.customer_id == customer_id]
    lo, hi = dates.bounds()
    if lo is not None:
        conds.append(Response.responded_at >= lo)
    if hi is not None:
        conds.append(Response.responded_at < hi)
    if category:
        conds.append(Response.category == category)
    if channel:
        conds.append(Response.channel == channel)
    total = int(await session.scalar(select(func.count()).select_from(Response).where(*conds)) or 0)
    page = _clamp_page(page, total, per_page)
    rows = await session.execute(
        select(Response, Staff.name)
        .outerjoin(Staff, Staff.id == Response.staff_id)
        .where(*conds)
        .order_by(Response.responded_at.desc(), Response.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return Page([_response_row(r, name) for r, name in rows], total, page, per_page)


async def open_responses(
    session: AsyncSession,
    *,
    customer_id: int,
    staff_id: int,
    call_id: int | None = None,
    limit: int = 20,
) -> list[ResponseRow]:
    """未完了 responses to complete: the monitor's call's first (even before it has a
    customer), then this operator's own, then the others; newest first within each."""
    where: Any = Response.customer_id == customer_id
    order: list[Any] = []
    if call_id is not None:
        where = or_(where, Response.call_id == call_id)
        order.append(case((Response.call_id == call_id, 0), else_=1))
    order += [
        case((Response.staff_id == staff_id, 0), else_=1),
        Response.responded_at.desc(),
        Response.id.desc(),
    ]
    done = aliased(Response)
    # The blank response a call left is moot when that call's response was entered already.
    moot = and_(
        Response.content == "",
        Response.call_id.is_not(None),
        select(done.id)
        .where(done.call_id == Response.call_id, done.id != Response.id, done.status == "done")
        .exists(),
    )
    rows = await session.execute(
        select(Response, Staff.name)
        .outerjoin(Staff, Staff.id == Response.staff_id)
        .where(where, Response.status == "open", ~moot)
        .order_by(*order)
        .limit(limit)
    )
    return [_response_row(r, name) for r, name in rows]


async def response_for_form(
    session: AsyncSession, *, response_id: int, customer_id: int, call_id: int | None = None
) -> Response | None:
    """An open response of this customer (or of the monitor's call) to load into the form."""
    r = await session.get(Response, response_id)
    if r is None or r.status != "open":
        return None
    if r.customer_id != customer_id and (call_id is None or r.call_id != call_id):
        return None
    return r


@dataclass
class ResponseValues:
    responded_at: dt.datetime
    category: str
    channel: str
    content: str
    answer: str
    status: str


def validate_response(
    *,
    responded_at: str,
    category: str,
    channel: str,
    content: str,
    answer: str,
    status: str,
    now: dt.datetime | None = None,
) -> ResponseValues:
    """Check a response typed in the form; raises :class:`ResponseInputError`."""
    now = now or utcnow()
    errors: dict[str, str] = {}
    when: dt.datetime | None = None
    try:
        when = parse_datetime(responded_at)
    except ValueError:
        errors["responded_at"] = "対応日時は 2015/01/01 10:30 の形式で入力してください。"
    else:
        if when is None:
            errors["responded_at"] = "対応日時を入力してください。"
        elif when > now + dt.timedelta(minutes=5):
            errors["responded_at"] = "未来の日時は入力できません。"
        elif far := dates.window_error(
            when.astimezone(JST).date(), around=now.astimezone(JST).date(), label="対応日時"
        ):
            errors["responded_at"] = far
    if category not in RESPONSE_CATEGORIES:
        errors["category"] = "区分を選んでください。"
    if channel not in RESPONSE_CHANNELS:
        errors["channel"] = "種別を選んでください。"
    content, answer = content.strip(), answer.strip()
    if not content:
        errors["content"] = "内容を入力してください。"
    elif len(content) > 4000:
        errors["content"] = "内容は4000文字以内で入力してください。"
    if len(answer) > 4000:
        errors["answer"] = "対応は4000文字以内で入力してください。"
    if status not in STATUSES:
        errors["status"] = "状態を選んでください。"
    if errors:
        raise ResponseInputError(errors)
    assert when is not None
    return ResponseValues(when, category, channel, content, answer, status)


def _action_text(values: ResponseValues | Response) -> tuple[str, str]:
    return f"{values.category}: {values.content}", "対応済" if values.status == "done" else "対応中"


async def _refuse_merged(session: AsyncSession, customer_id: int) -> None:
    """A customer merged into another takes no new entries: they belong to the survivor."""
    merged_into = await session.scalar(
        select(Customer.merged_into_id).where(Customer.id == customer_id)
    )
    if merged_into is not None:
        raise ResponseInputError(
            {
                "response": f"この顧客はお届け先コード {merged_into:08d} に統合されました。"
                "統合先の顧客モニタで入力してください。"
            }
        )


async def save_response(
    session: AsyncSession,
    *,
    customer_id: int,
    staff_id: int,
    call_id: int | None = None,
    responded_at: str,
    category: str,
    channel: str,
    content: str,
    answer: str = "",
    status: str = "done",
) -> Response:
    """Record a new response (linked to the monitor's call, if any) and its 対応 action.

    With a call that left a blank open response, that response is filled in instead.
    Raises :class:`ResponseInputError` (nothing written). A double submit of the same form
    returns the response the first one wrote.
    """
    await _refuse_merged(session, customer_id)
    v = validate_response(
        responded_at=responded_at,
        category=category,
        channel=channel,
        content=content,
        answer=answer,
        status=status,
    )
    same = await session.scalar(
        select(Response).where(
            Response.customer_id == customer_id,
            Response.staff_id == staff_id,
            Response.responded_at == v.responded_at,
            Response.category == v.category,
            Response.channel == v.channel,
            Response.content == v.content,
            Response.answer == v.answer,
            Response.created_at >= utcnow() - DUPLICATE_WINDOW,
        )
    )
    if same is not None:
        return same
    if call_id is not None:
        left = await session.scalar(
            select(Response.id)
            .where(
                Response.call_id == call_id,
                Response.status == "open",
                Response.content == "",
                or_(Response.customer_id == customer_id, Response.customer_id.is_(None)),
            )
            .order_by(Response.id)
            .limit(1)
        )
        if left is not None:  # the blank response the call left: fill that one in
            return await complete_response(
                session,
                response_id=left,
                customer_id=customer_id,
                staff_id=staff_id,
                call_id=call_id,
                responded_at=responded_at,
                category=category,
                channel=channel,
                content=content,
                answer=answer,
                status=status,
            )
    response = Response(
        customer_id=customer_id,
        call_id=call_id,
        staff_id=staff_id,
        responded_at=v.responded_at,
        category=v.category,
        channel=v.channel,
        content=v.content,
        answer=v.answer,
        status=v.status,
    )
    text, result = _action_text(v)
    session.add(response)
    session.add(
        Action(
            customer_id=customer_id,
            kind="response",
            occurred_at=v.responded_at,
            staff_id=staff_id,
            call_id=call_id,
            content=text,
            result=result,
        )
    )
    await session.flush()
    return response


async def complete_response(
    session: AsyncSession,
    *,
    response_id: int,
    customer_id: int,
    staff_id: int,
    call_id: int | None = None,
    responded_at: str,
    category: str,
    channel: str,
    content: str,
    answer: str = "",
    status: str = "done",
) -> Response:
    """Fill in an open response (e.g. the one a finished call left) and mark it 完了 (or keep
    it 未完了); its 対応 action is updated, or recorded when it has none.

    Raises :class:`ResponseInputError` (nothing written), also when the response is not an
    open response of this customer or of the monitor's call ``call_id``.
    """
    await _refuse_merged(session, customer_id)
    response = await response_for_form(
        session, response_id=response_id, customer_id=customer_id, call_id=call_id
    )
    if response is None:
        done = await session.get(Response, response_id)
        if (
            done is not None
            and done.status == "done"
            and done.customer_id == customer_id
            and (done.category, done.channel, done.content, done.answer)
            == (category, channel, content.strip(), answer.strip())
        ):
            return done  # the same form submitted twice
        raise ResponseInputError({"response": "この対応履歴は既に完了しているか、見つかりません。"})
    v = validate_response(
        responded_at=responded_at,
        category=category,
        channel=channel,
        content=content,
        answer=answer,
        status=status,
    )
    action = await session.scalar(
        select(Action)
        .where(
            Action.customer_id == customer_id,
            Action.occurred_at == response.responded_at,
            or_(
                and_(Action.kind == "response", Action.result == "対応中"),
                and_(Action.kind == "call_in", Action.result == "対応中"),
            ),
        )
        .order_by(Action.id)
        .limit(1)
    )
    response.customer_id = customer_id
    response.staff_id = response.staff_id or staff_id
    response.responded_at = v.responded_at
    response.category = v.category
    response.channel = v.channel
    response.content = v.content
    response.answer = v.answer
    response.status = v.status
    text, result = _action_text(v)
    if action is None:
        action = Action(
            customer_id=customer_id,
            kind="response",
            staff_id=response.staff_id,
            call_id=response.call_id,
        )
        session.add(action)
    action.occurred_at = v.responded_at
    action.content = text
    action.result = result
    await session.flush()
    return response


# --- FAQ (H2) ------------------------------------------------------------------------------

_WORDS = re.compile(r"[\s、。,.!?！？「」()（）]+")


def _words(text: str) -> list[str]:
    return [w for w in _WORDS.split(normalise(text).lower()) if w]


async def search_faqs(
    session: AsyncSession, *, q: str = "", text: str = "", limit: int = 8
) -> list[Faq]:
    """Active FAQs for the free search ``q`` (every word in the question, answer, keywords
    or category) and for the response ``text`` being typed (every word found, or one of
    the FAQ's keywords appearing in the text — Japanese is typed without spaces)."""
    fields = (Faq.question, Faq.answer, Faq.keywords, Faq.category)
    found: dict[int, Faq] = {}
    for source in (q, text):
        words = _words(source)
        if not words:
            continue
        conds = [or_(*(f.icontains(w, autoescape=True) for f in fields)) for w in words]
        hits = await session.scalars(
            select(Faq).where(Faq.active.is_(True), *conds).order_by(Faq.id).limit(limit)
        )
        for faq in hits:
            found.setdefault(faq.id, faq)
    phrase = normalise(text).lower()
    if phrase and len(found) < limit:
        rows = await session.execute(
            select(Faq.id, Faq.keywords).where(Faq.active.is_(True)).order_by(Faq.id).limit(2000)
        )
        scored = []
        for faq_id, keywords in rows:
            n = sum(1 for k in _words(keywords) if len(k) >= 2 and k in phrase)
            if n and faq_id not in found:
                scored.append((-n, faq_id))
        ids = [i for _, i in sorted(scored)[: limit - len(found)]]
        if ids:
            extra = {f.id: f for f in await session.scalars(select(Faq).where(Faq.id.in_(ids)))}
            for i in ids:
                found[i] = extra[i]
    return list(found.values())[:limit]


# --- actions and the sales that followed them (H3) -----------------------------------------


@dataclass
class Attribution:
    """Orders within ATTRIBUTION_DAYS after an outbound action, before the next one."""

    sales: int = 0
    orders: int = 0


@dataclass
class ActionRow:
    id: int
    occurred_at: dt.datetime
    kind: str
    staff_name: str
    content: str
    result: str
    amount: int
    order_number: str
    attribution: Attribution | None  # outbound actions only

    @property
    def kind_label(self) -> str:
        return ACTION_KINDS.get(self.kind, self.kind)


@dataclass
class KindSummary:
    kind: str
    actions: int = 0
    converted: int = 0  # actions followed by at least one order
    sales: int = 0

    @property
    def label(self) -> str:
        return ACTION_KINDS.get(self.kind, self.kind)


@dataclass
class ActionPage:
    page: Page[ActionRow]
    summary: list[KindSummary] = field(default_factory=list)


def _order_moment(created_at: dt.datetime, received_on: dt.date) -> dt.datetime:
    """When an order came in: its entry time, or the start of 受付日 when it was entered on
    another day (a postcard typed in later)."""
    if created_at.astimezone(JST).date() == received_on:
        return created_at
    return dt.datetime.combine(received_on, dt.time(), JST).astimezone(dt.UTC)


def attribute_sales(
    actions: Sequence[tuple[int, dt.datetime]],
    orders: Sequence[tuple[dt.datetime, int]],
    *,
    days: int = ATTRIBUTION_DAYS,
) -> dict[int, Attribution]:
    """Each outbound action (id, time) gets the orders (time, total) placed at or after it,
    within ``days``, and before the next outbound action."""
    acts = sorted(actions, key=lambda a: (a[1], a[0]))
    timeline = sorted(orders)
    times = [t for t, _ in timeline]
    window = dt.timedelta(days=days)
    out: dict[int, Attribution] = {}
    for i, (action_id, at) in enumerate(acts):
        end = at + window
        if i + 1 < len(acts):
            end = min(end, acts[i + 1][1])
        lo, hi = bisect.bisect_left(times, at), bisect.bisect_left(times, end)
        out[action_id] = Attribution(sum(total for _, total in timeline[lo:hi]), hi - lo)
    return out


async def _outbound_actions(
    session: AsyncSession, customer_id: int
) -> list[tuple[int, str, dt.datetime]]:
    rows = await session.execute(
        select(Action.id, Action.kind, Action.occurred_at).where(
            Action.customer_id == customer_id, Action.kind.in_(OUTBOUND_KINDS)
        )
    )
    return [(i, k, at) for i, k, at in rows]


async def sales_after_actions(
    session: AsyncSession,
    *,
    customer_id: int,
    actions: list[tuple[int, str, dt.datetime]] | None = None,
) -> dict[int, Attribution]:
    """For each of the customer's DM / カタログ / 電話 / メール actions: the total of their
    orders (not cancelled or returned) in the 30 days after it, before the next such action.
    ``actions``: the customer's outbound actions (id, kind, time) when already read."""
    if actions is None:
        actions = await _outbound_actions(session, customer_id)
    if not actions:
        return {}
    orders = (
        await session.execute(
            select(Order.created_at, Order.received_on, Order.total).where(
                Order.customer_id == customer_id, Order.status.not_in(LOST_ORDER_STATUSES)
            )
        )
    ).all()
    return attribute_sales(
        [(i, at) for i, _, at in actions],
        [(_order_moment(o.created_at, o.received_on), o.total) for o in orders],
    )


async def list_actions(
    session: AsyncSession,
    *,
    customer_id: int,
    dates: DateRange,
    kind: str = "",
    page: int = 1,
    per_page: int = PAGE_SIZE,
) -> ActionPage:
    """One customer's AC履歴, newest first, filtered by JST days and kind (empty: all), with
    the sales that followed each outbound action and a summary by kind over the range."""
    conds: list[Any] = [Action.customer_id == customer_id]
    lo, hi = dates.bounds()
    if lo is not None:
        conds.append(Action.occurred_at >= lo)
    if hi is not None:
        conds.append(Action.occurred_at < hi)
    if kind:
        conds.append(Action.kind == kind)
    total = int(await session.scalar(select(func.count()).select_from(Action).where(*conds)) or 0)
    page = _clamp_page(page, total, per_page)
    result = await session.execute(
        select(Action, Staff.name, Order.number, Order.total)
        .outerjoin(Staff, Staff.id == Action.staff_id)
        .outerjoin(Order, Order.id == Action.order_id)
        .where(*conds)
        .order_by(Action.occurred_at.desc(), Action.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    rows = result.all()
    outbound = await _outbound_actions(session, customer_id)
    attribution = await sales_after_actions(session, customer_id=customer_id, actions=outbound)
    out = [
        ActionRow(
            id=a.id,
            occurred_at=a.occurred_at,
            kind=a.kind,
            staff_name=staff_name or "",
            content=a.content,
            result=a.result,
            amount=a.amount or ((order_total or 0) if a.kind == "order" else 0),
            order_number=number or "",
            attribution=attribution.get(a.id) if a.kind in OUTBOUND_KINDS else None,
        )
        for a, staff_name, number, order_total in rows
    ]
    summary = {k: KindSummary(k) for k in OUTBOUND_KINDS}
    for action_id, action_kind, at in outbound:
        if not dates.contains(at):
            continue
        s, a = summary[action_kind], attribution[action_id]
        s.actions += 1
        s.converted += 1 if a.orders else 0
        s.sales += a.sales
    return ActionPage(Page(out, total, page, per_page), list(summary.values()))


# --- today's responses (H5) ----------------------------------------------------------------


@dataclass
class TodayRow:
    id: int
    responded_at: dt.datetime
    category: str
    channel: str
    status: str
    staff_name: str
    customer_id: int | None
    customer_name: str
    customer_code: str
    content: str
    answer: str
    call_id: int | None

    @property
    def status_label(self) -> str:
        return STATUSES.get(self.status, self.status)


TODAY_LIMIT = 2000


async def day_responses(
    session: AsyncSession,
    *,
    day: dt.date,
    category: str = "",
    staff_id: int | None = None,
    limit: int = TODAY_LIMIT,
) -> list[TodayRow]:
    """Every 対応履歴 of one JST day (対応履歴一覧表), oldest first, by 区分 and 担当者."""
    start = dt.datetime.combine(day, dt.time(), JST).astimezone(dt.UTC)
    conds: list[Any] = [
        Response.responded_at >= start,
        Response.responded_at < start + dt.timedelta(days=1),
    ]
    if category:
        conds.append(Response.category == category)
    if staff_id is not None:
        conds.append(Response.staff_id == staff_id)
    rows = await session.execute(
        select(Response, Staff.name, Customer.name, Customer.code)
        .outerjoin(Staff, Staff.id == Response.staff_id)
        .outerjoin(Customer, Customer.id == Response.customer_id)
        .where(*conds)
        .order_by(Response.responded_at, Response.id)
        .limit(limit)
    )
    return [
        TodayRow(
            id=r.id,
            responded_at=r.responded_at,
            category=r.category,
            channel=r.channel,
            status=r.status,
            staff_name=sname or "",
            customer_id=r.customer_id,
            customer_name=cname or "",
            customer_code=ccode or "",
            content=r.content,
            answer=r.answer,
            call_id=r.call_id,
        )
        for r, sname, cname, ccode in rows
    ]
