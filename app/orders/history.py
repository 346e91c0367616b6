"""購入履歴 (H4) and 受注一覧 (O5): reading orders back, a page at a time.

* :func:`purchase_lines` — one customer's orders, newest first, each with its lines (set parts
  and 同梱 lines under the line they came from). Two queries per page: the orders (with their
  ad, carrier, destination, the page count and the 定期 delivery number, all joined) and the
  lines of those orders.
* :func:`order_list` — everyone's orders by 受付日 range, 伝票区分, carrier, entering staff,
  the customer's 担当者 and the customer's code or name; one query per page plus a count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.auth.models import Staff
from app.customers.keys import kana_key, name_key
from app.customers.models import Customer, ShipTo
from app.customers.service import like_prefix
from app.masters.models import Ad, Carrier, OrderCampaign, SetItem
from app.orders.models import VOID_STATUSES, Order, OrderLine

SLIP_LABELS = {"normal": "通常", "subscription": "定期"}
PAYMENT_LABELS = {"paid": "済", "unpaid": "未", "returned": "返"}
STATUS_LABELS = {
    "confirmed": "受注済",
    "shipped": "出荷済",
    "cancelled": "キャンセル",
    "returned": "返品",
}
PAYMENT_METHOD_LABELS = {
    "cod": "代引",
    "postal": "郵便振替",
    "card": "クレジット",
    "bank": "銀行振込",
}
_CARRIER_SUFFIXES = ("運輸", "急便", "郵便", "便")


def carrier_label(name: str | None) -> str:
    """The short name operators use for a carrier: ヤマト運輸 → ヤマト, 佐川急便 → 佐川."""
    if not name:
        return ""
    for suffix in _CARRIER_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


@dataclass
class PurchaseLine:
    """One line of an order as the purchase history shows it."""

    position: int
    product_code: str
    product_name: str
    quantity: int
    amount: int
    is_present: bool = False
    part_of: str = ""  # "" a line of its own; "set" a part of a set; "companion" 同梱

    @property
    def is_part(self) -> bool:
        return self.part_of != ""

    @property
    def part_label(self) -> str:
        return {"set": "セット内容", "companion": "同梱"}.get(self.part_of, "")


class _OrderLabels:
    """Japanese labels of an order's codes (伝票種別, 入金, 状態)."""

    slip_type: str
    payment_status: str
    status: str

    @property
    def slip_label(self) -> str:
        return SLIP_LABELS.get(self.slip_type, self.slip_type)

    @property
    def payment_label(self) -> str:
        return PAYMENT_LABELS.get(self.payment_status, self.payment_status)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def void(self) -> bool:
        """Cancelled or returned: shown muted."""
        return self.status in VOID_STATUSES


@dataclass
class PurchaseOrder(_OrderLabels):
    """One order with its lines (parts right after the line they belong to)."""

    id: int
    number: str
    customer_id: int
    slip_type: str
    received_on: dt.date
    ship_on: dt.date | None
    deliver_on: dt.date | None
    destination: str  # prefecture shipped to
    ship_to_name: str  # the recipient when it is a 送付先, else ""
    ad_name: str
    category: str
    allocation: str
    carrier: str
    payment_method: str
    payment_status: str
    status: str
    total: int
    subscription_id: int | None = None
    delivery_no: int | None = None  # 何回目 of its subscription (cancelled orders: None)
    lines: list[PurchaseLine] = field(default_factory=list)
    campaigns: list[str] = field(default_factory=list)  # applied: "name（effect）"

    @property
    def payment_method_label(self) -> str:
        return PAYMENT_METHOD_LABELS.get(self.payment_method, self.payment_method)


@dataclass
class Page:
    """Paging facts shared by the lists."""

    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        """1-based number of the first item on this page (0 when the page is empty)."""
        return 0 if self.total == 0 else min(self.total, (self.page - 1) * self.per_page + 1)

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.per_page)


@dataclass
class PurchasePage(Page):
    orders: list[PurchaseOrder] = field(default_factory=list)


def _destination_columns() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """発送先 as the order recorded it (older rows: the ship-to's or the customer's prefecture)
    and the recipient's name when it went to a 送付先."""
    destination = func.coalesce(
        func.nullif(Order.ship_prefecture, ""), ShipTo.prefecture, Customer.prefecture
    ).label("destination")
    recipient = case(
        (Order.ship_to_id.is_(None), None),
        else_=func.coalesce(func.nullif(Order.ship_name, ""), ShipTo.name),
    ).label("ship_to_name")
    return destination, recipient


def _delivery_no() -> ColumnElement[Any]:
    """何回目: the running count of a subscription's non-cancelled orders by due date."""
    due = func.coalesce(Order.subscription_due_on, Order.received_on)
    running = func.sum(case((Order.status == "cancelled", 0), else_=1)).over(
        partition_by=Order.subscription_id, order_by=(due, Order.id)
    )
    return case(
        (or_(Order.subscription_id.is_(None), Order.status == "cancelled"), None),
        else_=running,
    )


async def purchase_lines(
    session: AsyncSession,
    *,
    customer_id: int,
    page: int = 1,
    per_page: int = 50,
    subscription_only: bool = False,
    subscription_id: int | None = None,
) -> PurchasePage:
    """購入履歴: ``customer_id``'s orders, newest 受注日 first, ``per_page`` orders a page.

    Each order carries its lines in position order, a set's parts and 同梱 lines placed right
    after the line they came from. ``subscription_only`` keeps the orders a subscription made
    (定期の配送履歴), ``subscription_id`` those of one subscription; every order of a
    subscription carries its delivery number either way.
    A page past the end is empty (``total`` is then 0 only when there are no orders at all).
    """
    page = max(1, page)
    conditions: list[ColumnElement[bool]] = [Order.customer_id == customer_id]
    if subscription_only:
        conditions.append(Order.subscription_id.is_not(None))
    if subscription_id is not None:
        conditions.append(Order.subscription_id == subscription_id)
    stmt = (
        select(
            Order.id,
            Order.number,
            Order.customer_id,
            Order.slip_type,
            Order.received_on,
            Order.ship_on,
            Order.deliver_on,
            *_destination_columns(),
            Ad.name.label("ad_name"),
            Order.category,
            Order.allocation,
            Carrier.name.label("carrier_name"),
            Order.payment_method,
            Order.payment_status,
            Order.status,
            Order.total,
            Order.subscription_id,
            _delivery_no().label("delivery_no"),
            func.count().over().label("n_orders"),
        )
        .join(Customer, Customer.id == Order.customer_id)
        .outerjoin(ShipTo, ShipTo.id == Order.ship_to_id)
        .outerjoin(Ad, Ad.id == Order.ad_id)
        .outerjoin(Carrier, Carrier.id == Order.carrier_id)
        .where(*conditions)
        .order_by(Order.received_on.desc(), Order.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = (await session.execute(stmt)).all()
    orders = [
        PurchaseOrder(
            id=r.id,
            number=r.number,
            customer_id=r.customer_id,
            slip_type=r.slip_type,
            received_on=r.received_on,
            ship_on=r.ship_on,
            deliver_on=r.deliver_on,
            destination=r.destination or "",
            ship_to_name=r.ship_to_name or "",
            ad_name=r.ad_name or "",
            category=r.category,
            allocation=r.allocation,
            carrier=carrier_label(r.carrier_name),
            payment_method=r.payment_method,
            payment_status=r.payment_status,
            status=r.status,
            total=r.total,
            subscription_id=r.subscription_id,
            delivery_no=int(r.delivery_no) if r.delivery_no is not None else None,
        )
        for r in rows
    ]
    total = int(rows[0].n_orders) if rows else 0
    if not rows and page > 1:
        total = await _count_orders(session, conditions)
    if orders:
        await _attach_lines(session, orders)
    return PurchasePage(total=total, page=page, per_page=per_page, orders=orders)


async def _count_orders(session: AsyncSession, conditions: Sequence[ColumnElement[bool]]) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(Order).where(*conditions)) or 0
    )


async def _attach_lines(session: AsyncSession, orders: list[PurchaseOrder]) -> None:
    """Load the lines of ``orders`` in one query and arrange parts under their lines."""
    parent = aliased(OrderLine)
    stmt = (
        select(
            OrderLine.order_id,
            OrderLine.position,
            OrderLine.product_code,
            OrderLine.product_name,
            OrderLine.quantity,
            OrderLine.amount,
            OrderLine.is_present,
            OrderLine.parent_position,
            parent.id.label("parent_id"),
            SetItem.id.label("set_item_id"),
        )
        .outerjoin(
            parent,
            and_(
                parent.order_id == OrderLine.order_id,
                parent.position == OrderLine.parent_position,
            ),
        )
        .outerjoin(
            SetItem,
            and_(
                SetItem.set_product_id == parent.product_id,
                SetItem.component_id == OrderLine.product_id,
            ),
        )
        .where(OrderLine.order_id.in_([o.id for o in orders]))
        .order_by(OrderLine.order_id, OrderLine.position, OrderLine.id)
    )
    by_order: dict[int, list[tuple[int | None, PurchaseLine]]] = {o.id: [] for o in orders}
    for r in await session.execute(stmt):
        is_part = r.parent_position is not None and r.parent_id is not None
        line = PurchaseLine(
            position=r.position,
            product_code=r.product_code,
            product_name=r.product_name,
            quantity=r.quantity,
            amount=r.amount,
            is_present=bool(r.is_present),
            part_of=("set" if r.set_item_id is not None else "companion") if is_part else "",
        )
        by_order[r.order_id].append((r.parent_position if is_part else None, line))
    for order in orders:
        order.lines = arrange_lines(by_order[order.id])
    # The campaigns applied to each order, as they were applied (name and what they did).
    applied: dict[int, list[str]] = {}
    for oid, name, effect in await session.execute(
        select(OrderCampaign.order_id, OrderCampaign.name, OrderCampaign.effect)
        .where(OrderCampaign.order_id.in_([o.id for o in orders]))
        .order_by(OrderCampaign.order_id, OrderCampaign.id)
    ):
        applied.setdefault(oid, []).append(f"{name}（{effect}）" if effect else name)
    for order in orders:
        order.campaigns = applied.get(order.id, [])


def arrange_lines(lines: Sequence[tuple[int | None, PurchaseLine]]) -> list[PurchaseLine]:
    """Lines in position order, each line's parts (``(parent_position, line)``) right after it."""
    children: dict[int, list[PurchaseLine]] = {}
    tops: list[PurchaseLine] = []
    for parent_position, line in lines:
        if parent_position is None:
            tops.append(line)
        else:
            children.setdefault(parent_position, []).append(line)
    out: list[PurchaseLine] = []
    for line in sorted(tops, key=lambda x: x.position):
        out.append(line)
        out.extend(sorted(children.pop(line.position, []), key=lambda x: x.position))
    for rest in children.values():  # parts whose line is missing: keep them visible
        out.extend(rest)
    return out


# --- 受注一覧 ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFilter:
    """The 受注一覧's conditions; empty/None means "any"."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    slip_type: str = ""  # "" / normal / subscription
    carrier_id: int | None = None
    entered_by: int | None = None  # 入力者 (Order.staff_id)
    owner_id: int | None = None  # 担当者 (Customer.staff_id)
    customer_code: str = ""  # prefix
    customer_name: str = ""  # prefix of the name or the kana


@dataclass
class OrderRow(_OrderLabels):
    """One order of the 受注一覧."""

    id: int
    number: str
    slip_type: str
    customer_id: int
    customer_code: str
    customer_name: str
    address: str
    destination: str
    ship_to_name: str
    ad_name: str
    products: str  # the first product, "ほか N点" when there are more
    quantity: int
    total: int
    carrier: str
    received_on: dt.date
    ship_on: dt.date | None
    deliver_on: dt.date | None
    payment_status: str
    status: str
    entered_by: str


@dataclass
class OrderListPage(Page):
    rows: list[OrderRow] = field(default_factory=list)


def _conditions(f: OrderFilter) -> tuple[list[ColumnElement[bool]], bool]:
    """WHERE conditions for ``f`` and whether they need the customers table."""
    conds: list[ColumnElement[bool]] = []
    needs_customer = False
    if f.date_from is not None:
        conds.append(Order.received_on >= f.date_from)
    if f.date_to is not None:
        conds.append(Order.received_on <= f.date_to)
    if f.slip_type:
        conds.append(Order.slip_type == f.slip_type)
    if f.carrier_id is not None:
        conds.append(Order.carrier_id == f.carrier_id)
    if f.entered_by is not None:
        conds.append(Order.staff_id == f.entered_by)
    if f.owner_id is not None:
        conds.append(Customer.staff_id == f.owner_id)
        needs_customer = True
    code = name_key(f.customer_code)
    if code:
        conds.append(Customer.code.like(like_prefix(code), escape="\\"))
        needs_customer = True
    name = f.customer_name.strip()
    if name:
        key = kana_key(name)
        is_kana = all("\u30a0" <= ch <= "\u30ff" for ch in key)
        if is_kana:
            conds.append(Customer.kana_key.like(like_prefix(key), escape="\\"))
        else:
            conds.append(Customer.name_key.like(like_prefix(name_key(name)), escape="\\"))
        needs_customer = True
    return conds, needs_customer


def _top_lines(*cols: Any) -> Any:
    return select(*cols).where(OrderLine.order_id == Order.id, OrderLine.parent_position.is_(None))


async def count_orders(session: AsyncSession, *, filters: OrderFilter) -> int:
    """How many orders match ``filters``."""
    conds, needs_customer = _conditions(filters)
    stmt = select(func.count()).select_from(Order)
    if needs_customer:
        stmt = stmt.join(Customer, Customer.id == Order.customer_id)
    return int(await session.scalar(stmt.where(*conds)) or 0)


async def order_list(
    session: AsyncSession, *, filters: OrderFilter, page: int = 1, per_page: int = 50
) -> OrderListPage:
    """受注一覧: the orders matching ``filters``, newest 受付日 first, ``per_page`` a page.

    One query fetches the page (the page's order ids picked from the orders first, then the
    customer, ship-to, ad, carrier and entering staff joined and the products summarised by
    correlated sub-queries for those rows only) and one counts.
    """
    page = max(1, page)
    total = await count_orders(session, filters=filters)
    conds, needs_customer = _conditions(filters)
    # The page's ids first, from the orders alone (the customers table only when a condition
    # needs it), so that only the page's rows are joined to everything else.
    ids = select(Order.id, Order.received_on, Order.created_at)
    if needs_customer:
        ids = ids.join(Customer, Customer.id == Order.customer_id)
    page_ids = (
        ids.where(*conds)
        .order_by(Order.received_on.desc(), Order.created_at.desc(), Order.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
        .subquery("page_ids")
    )
    entered = aliased(Staff)
    first_product = (
        _top_lines(OrderLine.product_name).order_by(OrderLine.position).limit(1).scalar_subquery()
    )
    n_lines = _top_lines(func.count()).scalar_subquery()
    quantity = _top_lines(func.coalesce(func.sum(OrderLine.quantity), 0)).scalar_subquery()
    stmt = (
        select(
            Order.id,
            Order.number,
            Order.slip_type,
            Order.customer_id,
            Customer.code.label("customer_code"),
            Customer.name.label("customer_name"),
            Customer.prefecture,
            Customer.city,
            Customer.street,
            Customer.building,
            *_destination_columns(),
            Ad.name.label("ad_name"),
            first_product.label("first_product"),
            n_lines.label("n_lines"),
            quantity.label("quantity"),
            Order.total,
            Carrier.name.label("carrier_name"),
            Order.received_on,
            Order.ship_on,
            Order.deliver_on,
            Order.payment_status,
            Order.status,
            entered.name.label("entered_by"),
        )
        .select_from(page_ids)
        .join(Order, Order.id == page_ids.c.id)
        .join(Customer, Customer.id == Order.customer_id)
        .outerjoin(ShipTo, ShipTo.id == Order.ship_to_id)
        .outerjoin(Ad, Ad.id == Order.ad_id)
        .outerjoin(Carrier, Carrier.id == Order.carrier_id)
        .outerjoin(entered, entered.id == Order.staff_id)
        .order_by(page_ids.c.received_on.desc(), page_ids.c.created_at.desc(), page_ids.c.id.desc())
    )
    rows = [
        OrderRow(
            id=r.id,
            number=r.number,
            slip_type=r.slip_type,
            customer_id=r.customer_id,
            customer_code=r.customer_code,
            customer_name=r.customer_name,
            address=f"{r.prefecture}{r.city}{r.street}" + (f" {r.building}" if r.building else ""),
            destination=r.destination or "",
            ship_to_name=r.ship_to_name or "",
            ad_name=r.ad_name or "",
            products=_summary(r.first_product, int(r.n_lines or 0)),
            quantity=int(r.quantity or 0),
            total=r.total,
            carrier=carrier_label(r.carrier_name),
            received_on=r.received_on,
            ship_on=r.ship_on,
            deliver_on=r.deliver_on,
            payment_status=r.payment_status,
            status=r.status,
            entered_by=r.entered_by or "",
        )
        for r in await session.execute(stmt)
    ]
    return OrderListPage(total=total, page=page, per_page=per_page, rows=rows)


def _summary(first: str | None, n_lines: int) -> str:
    if not first:
        return ""
    return first if n_lines <= 1 else f"{first} ほか{n_lines - 1}点"


@dataclass
class ListOptions:
    """Choices of the 受注一覧's selects."""

    carriers: list[tuple[int, str]]
    staff: list[tuple[int, str]]


async def order_list_options(session: AsyncSession) -> ListOptions:
    """Carriers (short names) and staff, active ones first, for the filters."""
    carriers = [
        (cid, carrier_label(name))
        for cid, name in await session.execute(
            select(Carrier.id, Carrier.name).order_by(Carrier.active.desc(), Carrier.id)
        )
    ]
    staff = [
        (sid, name if active else f"{name}（無効）")
        for sid, name, active in await session.execute(
            select(Staff.id, Staff.name, Staff.active).order_by(
                Staff.active.desc(), Staff.name_kana, Staff.name, Staff.id
            )
        )
    ]
    return ListOptions(carriers=carriers, staff=staff)
