"""長期放置顧客一覧 (D1): customers without an action of the chosen kinds for N days.

One indexed query over ``customer_last_actions`` (grp, last_at, customer_id): the index is
walked in 放置日数 order, joined to ``customers`` by key for the filters, and stops after a
page. The last order's details are fetched for the page's rows only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.customers.models import Customer
from app.dates import JST, parse_date
from app.inputs import ascii_int, normalise
from app.orders.models import Order, OrderLine
from app.outbound.models import ACTION_GROUPS, LastAction
from app.responses.models import ACTION_KINDS, Action

PER_PAGE = 50
DEFAULT_DAYS = 30
SORTS = {
    "days": "放置日数（長い順）",
    "-days": "放置日数（短い順）",
    "code": "コード順",
    "name": "かな順",
    "last_order": "最終受注日（新しい順）",
    "-last_order": "最終受注日（古い順）",
}
DM_CHOICES = {"": "指定なし", "1": "DM 必要", "0": "DM 不要"}


@dataclass
class DormantFilters:
    """What the 長期放置顧客一覧 form asks for (already validated)."""

    base_date: dt.date
    group: str = "any"
    days: int = DEFAULT_DAYS
    rank_id: int | None = None
    prefecture: str = ""
    product_id: int | None = None
    dm: str = ""  # "" any, "1" DM required, "0" not
    exclude_no_call: bool = False
    sort: str = "days"

    @property
    def cutoff(self) -> dt.datetime:
        """Actions at or after this instant are too recent: the start of the JST day after
        ``base_date - days``."""
        day = self.base_date - dt.timedelta(days=self.days - 1)
        return dt.datetime.combine(day, dt.time(), JST).astimezone(dt.UTC)

    def as_dict(self) -> dict[str, Any]:
        return {
            "base_date": self.base_date.isoformat(),
            "group": self.group,
            "days": self.days,
            "rank_id": self.rank_id,
            "prefecture": self.prefecture,
            "product_id": self.product_id,
            "dm": self.dm,
            "exclude_no_call": self.exclude_no_call,
            "sort": self.sort,
        }


@dataclass
class DormantForm:
    values: dict[str, str]
    filters: DormantFilters
    errors: dict[str, str] = field(default_factory=dict)
    page: int = 1


def parse_form(params: Mapping[str, str], *, today: dt.date) -> DormantForm:
    """The query string of the list (or the CSV, or a new work list) checked field by field."""
    values = {
        k: str(params.get(k, "")).strip()
        for k in ("start", "group", "days", "rank", "prefecture", "product", "dm", "sort")
    }
    values["nocall"] = "1" if params.get("nocall") == "1" else ""
    errors: dict[str, str] = {}
    base = today
    try:
        base = parse_date(values["start"]) or today
    except ValueError:
        errors["start"] = "開始日付は YYYY/MM/DD の形式で入力してください。"
    if not values["start"]:
        values["start"] = base.strftime("%Y/%m/%d")
    group = values["group"] or "any"
    if group not in ACTION_GROUPS:
        errors["group"] = "アクション区分を選んでください。"
        group = "any"
    days = DEFAULT_DAYS
    raw_days = normalise(values["days"])
    if raw_days:
        number = ascii_int(raw_days, max_digits=5)
        if number is not None and 1 <= number <= 36500:
            days = number
        else:
            errors["days"] = "放置日数は 1 以上の日数で入力してください。"
    else:
        values["days"] = str(DEFAULT_DAYS)

    def ident(key: str, label: str) -> int | None:
        raw = normalise(values[key])
        if not raw:
            return None
        number = ascii_int(raw)
        if number is None:
            errors[key] = f"{label}を選んでください。"
        return number

    dm = values["dm"] if values["dm"] in DM_CHOICES else ""
    sort = values["sort"] if values["sort"] in SORTS else "days"
    page_raw = normalise(str(params.get("page", "1")))
    page = ascii_int(page_raw, max_digits=6) or 1
    filters = DormantFilters(
        base_date=base,
        group=group,
        days=days,
        rank_id=ident("rank", "ランク"),
        prefecture=values["prefecture"],
        product_id=ident("product", "商品"),
        dm=dm,
        exclude_no_call=values["nocall"] == "1",
        sort=sort,
    )
    return DormantForm(values=values, filters=filters, errors=errors, page=page)


def _base_query(f: DormantFilters, columns: list[Any]) -> Select[Any]:
    la = LastAction
    stmt = (
        select(*columns)
        .select_from(la)
        .join(Customer, Customer.id == la.customer_id)
        .where(la.grp == f.group, la.last_at < f.cutoff, Customer.merged_into_id.is_(None))
    )
    if f.rank_id is not None:
        stmt = stmt.where(Customer.rank_id == f.rank_id)
    if f.prefecture:
        stmt = stmt.where(Customer.prefecture == f.prefecture)
    if f.dm:
        stmt = stmt.where(Customer.dm_required.is_(f.dm == "1"))
    if f.exclude_no_call:
        stmt = stmt.where(Customer.no_call.is_(False))
    if f.product_id is not None:
        lo = aliased(LastAction)
        stmt = stmt.where(
            exists(
                select(1)
                .select_from(lo)
                .join(OrderLine, OrderLine.order_id == lo.order_id)
                .where(
                    lo.customer_id == la.customer_id,
                    lo.grp == "order",
                    OrderLine.product_id == f.product_id,
                )
            )
        )
    return stmt


def _ordered(stmt: Select[Any], f: DormantFilters) -> Select[Any]:
    la = LastAction
    if f.sort == "-days":
        return stmt.order_by(la.last_at.desc(), la.customer_id.desc())
    if f.sort == "code":
        return stmt.order_by(Customer.code)
    if f.sort == "name":
        return stmt.order_by(Customer.kana_key, Customer.id)
    if f.sort in ("last_order", "-last_order"):
        lo = aliased(LastAction)
        stmt = stmt.outerjoin(lo, and_(lo.customer_id == la.customer_id, lo.grp == "order"))
        ordered = lo.last_at.desc() if f.sort == "last_order" else lo.last_at.asc()
        return stmt.order_by(lo.action_id.is_(None), ordered, la.customer_id)
    return stmt.order_by(la.last_at, la.customer_id)


@dataclass
class DormantRow:
    customer_id: int
    code: str
    name: str
    address: str
    no_call: bool
    last_at: dt.datetime | None  # None: no action of the kinds since registration
    last_label: str
    last_content: str
    days: int
    last_order_on: dt.date | None = None
    product: str = ""
    quantity: int | None = None
    amount: int | None = None


@dataclass
class DormantPage:
    rows: list[DormantRow]
    page: int
    per_page: int
    has_next: bool


async def dormant_ids(
    session: AsyncSession, *, filters: DormantFilters, limit: int, offset: int = 0
) -> list[int]:
    """Customer ids of the list in its order (for a work list: every row, up to ``limit``)."""
    stmt = _ordered(_base_query(filters, [LastAction.customer_id]), filters)
    return list((await session.scalars(stmt.limit(limit).offset(offset))).all())


async def dormant_page(
    session: AsyncSession, *, filters: DormantFilters, page: int = 1, per_page: int = PER_PAGE
) -> DormantPage:
    """One page of the 長期放置顧客一覧, most dormant first unless sorted otherwise."""
    la = LastAction
    cols = [
        la.customer_id,
        Customer.code,
        Customer.name,
        Customer.prefecture,
        Customer.city,
        Customer.street,
        Customer.building,
        Customer.no_call,
        la.last_at,
        la.action_id,
        la.kind,
    ]
    stmt = _ordered(_base_query(filters, cols), filters)
    rows = (await session.execute(stmt.limit(per_page + 1).offset((page - 1) * per_page))).all()
    has_next = len(rows) > per_page
    rows = rows[:per_page]
    out = await _details(session, rows, filters)
    return DormantPage(out, page, per_page, has_next)


async def count_dormant(session: AsyncSession, *, filters: DormantFilters) -> int:
    """How many customers the list holds (asked for separately: it reads every row)."""
    stmt = _base_query(filters, [func.count()])
    return int(await session.scalar(stmt) or 0)


async def _details(
    session: AsyncSession, rows: list[Any], filters: DormantFilters
) -> list[DormantRow]:
    ids = [r.customer_id for r in rows]
    action_ids = [r.action_id for r in rows if r.action_id is not None]
    contents: dict[int, tuple[str, str]] = {}
    if action_ids:
        for a in (
            await session.execute(
                select(Action.id, Action.kind, Action.content).where(Action.id.in_(action_ids))
            )
        ).all():
            contents[a.id] = (a.kind, a.content)
    last_orders: dict[int, int] = {}
    if ids:
        for lo in (
            await session.execute(
                select(LastAction.customer_id, LastAction.order_id).where(
                    LastAction.customer_id.in_(ids),
                    LastAction.grp == "order",
                    LastAction.order_id.is_not(None),
                )
            )
        ).all():
            last_orders[lo.customer_id] = lo.order_id
    orders: dict[int, Any] = {}
    lines: dict[int, list[Any]] = {}
    if last_orders:
        order_ids = list(last_orders.values())
        for o in (
            await session.execute(
                select(Order.id, Order.received_on, Order.total).where(Order.id.in_(order_ids))
            )
        ).all():
            orders[o.id] = o
        for ln in (
            await session.execute(
                select(OrderLine.order_id, OrderLine.product_name, OrderLine.quantity)
                .where(OrderLine.order_id.in_(order_ids))
                .order_by(OrderLine.order_id, OrderLine.position, OrderLine.id)
            )
        ).all():
            lines.setdefault(ln.order_id, []).append(ln)
    out: list[DormantRow] = []
    for r in rows:
        kind, content = contents.get(r.action_id, (r.kind, "")) if r.action_id else ("", "")
        last_day = r.last_at.astimezone(JST).date()
        row = DormantRow(
            customer_id=r.customer_id,
            code=r.code,
            name=r.name,
            address=f"{r.prefecture}{r.city}{r.street}{(' ' + r.building) if r.building else ''}",
            no_call=bool(r.no_call),
            last_at=r.last_at if r.action_id else None,
            last_label=(ACTION_KINDS.get(kind) or kind) if r.action_id else "",
            last_content=content,
            days=(filters.base_date - last_day).days,
        )
        order = orders.get(last_orders.get(r.customer_id, -1))
        if order is not None:
            olines = lines.get(order.id, [])
            row.last_order_on = order.received_on
            row.amount = order.total
            row.quantity = sum(ln.quantity for ln in olines)
            if olines:
                row.product = olines[0].product_name + (" 他" if len(olines) > 1 else "")
        out.append(row)
    return out
