"""定期発送一覧 (S3): the subscription shipments of a chosen day — the orders the daily run
made for it, and the subscriptions still to be made — on screen, as CSV and as a printable
PDF (定期発送一覧表)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.csvsafe import safe_cell
from app.customers.models import Customer, ShipTo
from app.masters.models import Carrier, Product
from app.orders.history import carrier_label
from app.orders.models import Order, OrderLine
from app.pdf import table_pdf
from app.subscriptions.models import Subscription, SubscriptionItem

STATES = {"made": "作成済", "pending": "未作成"}


@dataclass
class ShipmentRow:
    state: str  # made / pending
    subscription_id: int
    customer_id: int
    customer_code: str
    customer_name: str
    ship_name: str
    ship_address: str
    carrier: str
    amount: int | None
    order_number: str
    ship_on: dt.date | None
    deliver_on: dt.date | None
    products: list[tuple[str, str, int]] = field(default_factory=list)  # code, name, qty

    @property
    def state_label(self) -> str:
        return STATES[self.state]

    @property
    def quantity(self) -> int:
        return sum(q for _, _, q in self.products)


@dataclass
class Shipments:
    day: dt.date
    rows: list[ShipmentRow]
    made: int
    pending: int
    total_amount: int
    page: int = 1
    pages: int = 1


def _pending_condition(day: dt.date, today: dt.date) -> object:
    """Subscriptions whose order for ``day`` is still to be made: due that day (a day up to
    today also shows the overdue ones the next run will make)."""
    due = Subscription.next_date <= day if day <= today else Subscription.next_date == day
    return and_(
        Subscription.status != "cancelled",
        due,
        or_(Subscription.paused_until.is_(None), Subscription.paused_until < day),
    )


async def shipments(
    session: AsyncSession,
    *,
    day: dt.date,
    today: dt.date,
    page: int = 1,
    per_page: int | None = None,
) -> Shipments:
    """The day's subscription shipments: orders made for the day (受付日 the day: due that
    day, or overdue and made that day), then the subscriptions still pending, each by
    お届け先コード. ``per_page`` None: all of them."""
    made_stmt = (
        select(Order, Customer.code, Customer.name, Carrier.name)
        .join(Customer, Customer.id == Order.customer_id)
        .outerjoin(Carrier, Carrier.id == Order.carrier_id)
        .where(Order.subscription_id.is_not(None), Order.received_on == day)
        .order_by(Customer.code, Order.id)
    )
    pending_where = _pending_condition(day, today)
    n_made = int(
        await session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.subscription_id.is_not(None), Order.received_on == day)
        )
        or 0
    )
    n_pending = int(
        await session.scalar(select(func.count()).select_from(Subscription).where(pending_where))  # type: ignore[arg-type]
        or 0
    )
    total_amount = int(
        await session.scalar(
            select(func.coalesce(func.sum(Order.total), 0)).where(
                Order.subscription_id.is_not(None), Order.received_on == day
            )
        )
        or 0
    )
    n = n_made + n_pending
    pages = 1 if per_page is None else max(1, -(-n // per_page))
    page = min(max(1, page), pages)
    offset = 0 if per_page is None else (page - 1) * per_page
    rows: list[ShipmentRow] = []
    if offset < n_made:
        stmt = made_stmt.offset(offset)
        if per_page is not None:
            stmt = stmt.limit(per_page)
        orders = (await session.execute(stmt)).all()
        by_order: dict[int, ShipmentRow] = {}
        for order, code, name, carrier in orders:
            row = ShipmentRow(
                state="made",
                subscription_id=order.subscription_id or 0,
                customer_id=order.customer_id,
                customer_code=code,
                customer_name=name,
                ship_name=order.ship_name or name,
                ship_address=order.ship_address,
                carrier=carrier_label(carrier),
                amount=order.total,
                order_number=order.number,
                ship_on=order.ship_on,
                deliver_on=order.deliver_on,
            )
            by_order[order.id] = row
            rows.append(row)
        for chunk in _chunks(list(by_order), 1000):
            lines = await session.execute(
                select(
                    OrderLine.order_id,
                    OrderLine.product_code,
                    OrderLine.product_name,
                    OrderLine.quantity,
                )
                .where(OrderLine.order_id.in_(chunk), OrderLine.parent_position.is_(None))
                .order_by(OrderLine.order_id, OrderLine.position)
            )
            for oid, pcode, pname, qty in lines:
                by_order[oid].products.append((pcode, pname, qty))
    left = None if per_page is None else per_page - len(rows)
    if n_pending and (left is None or left > 0):
        p_offset = max(0, offset - n_made)
        ship_to = ShipTo.__table__.alias("st")
        stmt2 = (
            select(
                Subscription.id,
                Subscription.customer_id,
                Customer.code,
                Customer.name,
                Customer.prefecture,
                Customer.city,
                Customer.street,
                Customer.building,
                ship_to.c.name,
                ship_to.c.prefecture,
                ship_to.c.city,
                ship_to.c.street,
                ship_to.c.building,
                Carrier.name,
            )
            .join(Customer, Customer.id == Subscription.customer_id)
            .outerjoin(ship_to, ship_to.c.id == Subscription.ship_to_id)
            .outerjoin(Carrier, Carrier.id == Subscription.carrier_id)
            .where(pending_where)  # type: ignore[arg-type]
            .order_by(Customer.code, Subscription.id)
            .offset(p_offset)
        )
        if left is not None:
            stmt2 = stmt2.limit(left)
        by_sub: dict[int, ShipmentRow] = {}
        for r in (await session.execute(stmt2)).all():
            (sid, cid, code, name, pref, city, street, bldg) = r[:8]
            s_name, s_pref, s_city, s_street, s_bldg, carrier = r[8:]
            if s_name is not None:
                ship_name, address = s_name, f"{s_pref}{s_city}{s_street} {s_bldg}"
            else:
                ship_name, address = name, f"{pref}{city}{street} {bldg}"
            row = ShipmentRow(
                state="pending",
                subscription_id=sid,
                customer_id=cid,
                customer_code=code,
                customer_name=name,
                ship_name=ship_name,
                ship_address=address.strip(),
                carrier=carrier_label(carrier),
                amount=None,
                order_number="",
                ship_on=None,
                deliver_on=None,
            )
            by_sub[sid] = row
            rows.append(row)
        items: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
        for chunk in _chunks(list(by_sub), 1000):
            for sid, pcode, pname, qty in await session.execute(
                select(
                    SubscriptionItem.subscription_id,
                    Product.code,
                    Product.name,
                    SubscriptionItem.quantity,
                )
                .join(Product, Product.id == SubscriptionItem.product_id)
                .where(SubscriptionItem.subscription_id.in_(chunk))
                .order_by(SubscriptionItem.subscription_id, SubscriptionItem.id)
            ):
                items[sid].append((pcode, pname, qty))
        for sid, row in by_sub.items():
            row.products = items.get(sid, [])
    return Shipments(
        day=day,
        rows=rows,
        made=n_made,
        pending=n_pending,
        total_amount=total_amount,
        page=page,
        pages=pages,
    )


def _chunks(values: list[int], size: int) -> list[list[int]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _ymd(day: dt.date | None) -> str:
    return f"{day:%Y/%m/%d}" if day is not None else ""


CSV_HEADER = (
    "状態",
    "受注番号",
    "お届け先コード",
    "顧客名",
    "送付先名",
    "発送先住所",
    "商品コード",
    "商品名",
    "個数",
    "配送方法",
    "出荷予定日",
    "お届け予定日",
    "金額",
    "定期No.",
)


def shipments_csv(result: Shipments) -> bytes:
    """One line per product (UTF-8 with BOM, CRLF: Excel opens it as is)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in result.rows:
        for i, (code, name, qty) in enumerate(r.products or [("", "", 0)]):
            writer.writerow(
                (
                    r.state_label,
                    r.order_number,
                    r.customer_code,
                    safe_cell(r.customer_name),
                    safe_cell(r.ship_name),
                    safe_cell(r.ship_address),
                    code,
                    safe_cell(name),
                    qty,
                    r.carrier,
                    _ymd(r.ship_on),
                    _ymd(r.deliver_on),
                    r.amount if r.amount is not None and i == 0 else "",
                    r.subscription_id,
                )
            )
    return out.getvalue().encode("utf-8")


PDF_HEADER = (
    "状態", "受注番号", "コード", "顧客名", "発送先",
    "商品名", "個数", "配送", "出荷予定日", "金額",
)  # fmt: skip


def shipments_pdf(result: Shipments, *, printed_at: dt.datetime) -> bytes:
    """定期発送一覧表: A4 landscape, Japanese text in reportlab's built-in CID font."""
    return table_pdf(
        title=f"定期発送一覧表 {_ymd(result.day)}",
        heading=f"定期発送一覧表 {_ymd(result.day)}",
        info=(
            f"作成済 {result.made:,}件 / 未作成 {result.pending:,}件 / "
            f"金額合計 {result.total_amount:,}円 / 印刷 {printed_at:%Y/%m/%d %H:%M}"
        ),
        header=PDF_HEADER,
        rows=[
            [
                r.state_label,
                r.order_number,
                r.customer_code,
                r.customer_name,
                f"{r.ship_name} {r.ship_address}",
                "\n".join(f"{c} {n} ×{q}" for c, n, q in r.products),
                str(r.quantity),
                r.carrier,
                _ymd(r.ship_on),
                f"{r.amount:,}" if r.amount is not None else "",
            ]
            for r in result.rows
        ],
        widths_mm=(14, 30, 20, 30, 62, 62, 10, 18, 20, 20),
        right=(6, 9),
    )
