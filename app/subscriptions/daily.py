"""The daily subscription run (S2): every subscription due on or before a day gets its order,
exactly once per subscription and due date, then its next delivery date moves on.

Set-based and batched: a batch of subscriptions is read with its customer, ship-to and
shipping rate in one query, priced and dated in Python with the order-entry rules
(:mod:`app.orders.dates`, :func:`app.orders.pricing.quote`, set products and companions
expanded as order entry does), and written with multi-row statements. The orders are inserted
with ``INSERT … ON CONFLICT (subscription_id, subscription_due_on) DO NOTHING``, so a second
run, or a run in another worker at the same time, adds nothing: the database decides.

Dates: a subscription's 次回配送日 (``next_date``) is the day its order is made and shipped
from (its due date). The order's 受付日 is that due date, or today when the due date has
passed (a run caught up after the server was down, or an overdue subscription made late):
nothing is dated in the past. Its 出荷予定日 is the first shipping day from its 受付日 (before
the cut-off, as an order taken that morning), its お届け予定日 that plus the carrier's lead
days for the destination prefecture. A run for a later day made ahead of time gives each
subscription due up to that day its own day, so none ships later than it is due. The order
keeps its due date (``subscription_due_on``), which is what makes it unique.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import and_, func, insert, literal, or_, select, text, true, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import record
from app.config import OrdersConfig
from app.customers.models import Customer, ShipTo
from app.dates import JST
from app.masters.models import Product, ShippingRate
from app.orders.dates import delivery_date, ship_date
from app.orders.lines import DraftLine, DraftRow, expand_lines, product_summary
from app.orders.models import Order, OrderLine
from app.orders.pricing import PriceLine, quote
from app.responses.models import Action
from app.runs.registry import Progress
from app.subscriptions.models import Subscription, SubscriptionItem
from app.subscriptions.service import next_after

BATCH = 5000
# PostgreSQL: batches run in this many connections at once (the database does most of the
# work, and it uses more than one core); SQLite has one writer and uses one.
LANES = 2
RUN_HOUR = 6  # the 受付 time of the orders a run makes (before any cut-off)


@dataclass
class RunResult:
    day: dt.date
    due: int = 0  # subscriptions due on or before the day when the run started
    created: int = 0  # orders this run made
    existing: int = 0  # orders another run had made already
    problems: dict[int, str] = field(default_factory=dict)  # subscription id -> why not

    @property
    def message(self) -> str:
        text = f"{self.day:%Y/%m/%d} 対象 {self.due:,}件 / 作成 {self.created:,}件"
        if self.existing:
            text += f" / 作成済み {self.existing:,}件"
        if self.problems:
            text += f" / 作成できず {len(self.problems):,}件"
        return text


def due_condition(day: dt.date) -> Any:
    """Subscriptions whose delivery is due on or before ``day``: running, or paused no later
    than the day before."""
    return and_(
        Subscription.status != "cancelled",
        Subscription.next_date.is_not(None),
        Subscription.next_date <= day,
        or_(Subscription.paused_until.is_(None), Subscription.paused_until < day),
    )


def _sqlite_number_expr() -> Any:
    """受注番号 ``YYYYMMDD-0000123`` from the 受付日 and the id, as order entry makes it
    (SQLite; PostgreSQL takes the ids from the sequence first and writes the number with the
    row)."""
    return func.strftime("%Y%m%d", Order.received_on) + literal("-") + func.printf("%07d", Order.id)


async def _expand_all(
    session: AsyncSession,
    products: dict[int, Product],
    groups: dict[int, list[tuple[int, int, int]]],
) -> dict[int, list[DraftLine]]:
    """Each subscription's order lines, set products and companions expanded by order
    entry's own rules — one call for the whole batch, split back per subscription (an item
    line is followed by the lines it brings), positions counted from 0 again."""
    typed: list[tuple[DraftRow, Product, int, int]] = []
    owners: list[int] = []
    for sid, items in groups.items():
        for pid, qty, price in items:
            product = products[pid]
            typed.append(
                (DraftRow(len(typed), product.code, str(qty), str(price), ""), product, qty, price)
            )
            owners.append(sid)
    out: dict[int, list[DraftLine]] = defaultdict(list)
    item_no = -1
    base = 0
    for line in await expand_lines(session, typed):
        if line.kind == "item":
            item_no += 1
            sid = owners[item_no]
            if not out[sid]:
                base = line.position
        sid = owners[item_no]
        out[sid].append(
            replace(
                line,
                position=line.position - base,
                parent_position=None
                if line.parent_position is None
                else line.parent_position - base,
            )
        )
    return out


def _defaults(table: Any, rows: list[dict[str, Any]]) -> list[str]:
    """Fill every column a row leaves out with its default; returns the column names."""
    cols = [c for c in table.columns if c.name != "id" or all("id" in r for r in rows)]
    for c in cols:
        if all(c.name in r for r in rows):
            continue
        default: Any = None
        if c.default is not None:
            arg = c.default.arg
            default = arg(None) if callable(arg) else arg
        for r in rows:
            r.setdefault(c.name, default)
    return [c.name for c in cols]


def _unnest_insert(table: Any, names: list[str], suffix: str = "") -> Any:
    """PostgreSQL: ``INSERT … SELECT * FROM unnest(:col1::type[], …)`` — a whole batch as one
    statement with one array parameter per column."""
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    arrays = ", ".join(f"CAST(:{n} AS {table.c[n].type.compile(dialect=dialect)}[])" for n in names)
    return text(
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays}) {suffix}"
    )


async def _insert_rows(
    session: AsyncSession, model: Any, rows: list[dict[str, Any]], suffix: str = ""
) -> Any:
    """Insert many rows: one ``unnest`` statement on PostgreSQL, executemany elsewhere."""
    if not rows:
        return None
    table = model.__table__
    if session.get_bind().dialect.name == "postgresql":
        names = _defaults(table, rows)
        params = {n: [r[n] for r in rows] for n in names}
        return await session.execute(_unnest_insert(table, names, suffix), params)
    return await session.execute(insert(model), rows)


async def _batch(
    session: AsyncSession,
    *,
    day: dt.date,
    today: dt.date,
    after_id: int,
    orders: OrdersConfig,
    result: RunResult,
    token: str,
    lane: tuple[int, int] = (0, 1),
) -> tuple[int, int]:
    """One batch of due subscriptions after ``after_id`` (those with ``id % lanes == k``
    for ``lane`` (k, lanes)): (last id seen, how many seen)."""
    ship_to = ShipTo.__table__.alias("st")
    prefecture = func.coalesce(ship_to.c.prefecture, Customer.prefecture)
    rows: Sequence[Any] = (
        await session.execute(
            select(
                Subscription.id,
                Subscription.customer_id,
                Subscription.next_date,
                Subscription.interval_unit,
                Subscription.interval_n,
                Subscription.day_of_month,
                Subscription.ship_to_id,
                Subscription.carrier_id,
                Subscription.payment_method,
                Customer.name,
                Customer.postcode,
                Customer.prefecture,
                Customer.city,
                Customer.street,
                Customer.building,
                Customer.ad_id,
                Customer.merged_into_id,
                ship_to.c.name,
                ship_to.c.postcode,
                ship_to.c.prefecture,
                ship_to.c.city,
                ship_to.c.street,
                ship_to.c.building,
                ShippingRate.fee,
                ShippingRate.cod_fee,
                ShippingRate.lead_days,
                ShippingRate.region,
            )
            .join(Customer, Customer.id == Subscription.customer_id)
            .outerjoin(ship_to, ship_to.c.id == Subscription.ship_to_id)
            .outerjoin(
                ShippingRate,
                and_(
                    ShippingRate.carrier_id == Subscription.carrier_id,
                    ShippingRate.prefecture == prefecture,
                ),
            )
            .where(
                due_condition(day),
                Subscription.id > after_id,
                (Subscription.id % lane[1]) == lane[0] if lane[1] > 1 else true(),
            )
            .order_by(Subscription.id)
            .limit(BATCH)
        )
    ).all()
    if not rows:
        return after_id, 0
    ids = [r[0] for r in rows]
    items: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    products: dict[int, Product] = {}
    for sid, pid, qty, price in (
        await session.execute(
            select(
                SubscriptionItem.subscription_id,
                SubscriptionItem.product_id,
                SubscriptionItem.quantity,
                SubscriptionItem.unit_price,
            )
            .where(SubscriptionItem.subscription_id.in_(ids))
            .order_by(SubscriptionItem.subscription_id, SubscriptionItem.id)
        )
    ).all():
        items[sid].append((pid, qty, price))
    wanted = {pid for group in items.values() for pid, _, _ in group}
    if wanted:
        for product in await session.scalars(select(Product).where(Product.id.in_(wanted))):
            products[product.id] = product
    expanded = await _expand_all(
        session,
        products,
        {
            r[0]: items[r[0]]
            for r in rows
            if items.get(r[0]) and all(products[pid].active for pid, _, _ in items[r[0]])
        },
    )

    ship_days: dict[dt.date, dt.date] = {}

    def ship_from(received: dt.date) -> dt.date:
        if received not in ship_days:
            ship_days[received] = ship_date(
                dt.datetime.combine(received, dt.time(RUN_HOUR), JST),
                cutoff=orders.cutoff_time,
                closed_weekdays=orders.closed_weekdays,
            )
        return ship_days[received]

    values: list[dict[str, Any]] = []
    planned: dict[int, tuple[list[DraftLine], int, dt.date]] = {}  # sid -> lines, total, next
    for r in rows:
        (sid, cid, due, unit, n, dom, st_id, carrier_id, payment) = r[:9]
        c_name, c_post, c_pref, c_city, c_street, c_bldg, ad_id, merged = r[9:17]
        s_name, s_post, s_pref, s_city, s_street, s_bldg = r[17:23]
        fee, cod_fee, lead_days, region = r[23:27]
        problem = ""
        subs_items = items.get(sid, [])
        if merged is not None:
            problem = "統合済みの顧客です。"
        elif not subs_items:
            problem = "商品がありません。"
        elif any(not products[pid].active for pid, _, _ in subs_items):
            problem = "販売を終了した商品があります。"
        elif carrier_id is None:
            problem = "配送会社がありません。"
        elif lead_days is None:
            problem = "送料マスタに発送先の都道府県の送料がありません。"
        if problem:
            result.problems[sid] = problem
            continue
        lines = expanded[sid]
        price_lines = [
            PriceLine(x.code, x.name, x.quantity, x.unit_price, x.tax_class, x.is_present)
            for x in lines
            if x.kind == "item"
        ]
        q = quote(price_lines, shipping_fee=fee, cod_fee=cod_fee if payment == "cod" else 0)
        if st_id is not None and s_name is not None:
            name, post, pref = s_name, s_post, s_pref
            address = f"{s_pref}{s_city}{s_street} {s_bldg}"
        else:
            name, post, pref = c_name, c_post, c_pref
            address = f"{c_pref}{c_city}{c_street} {c_bldg}"
        nxt = next_after(interval_unit=unit, interval_n=n, day_of_month=dom, due=due, day=day)
        planned[sid] = (lines, q.total, nxt)
        received = max(due, today)
        ship_on = ship_from(received)
        values.append(
            {
                "number": f"s{token}{sid}",
                "customer_id": cid,
                "ship_to_id": st_id,
                "ship_name": name[:100],
                "ship_postcode": post[:8],
                "ship_prefecture": pref[:8],
                "ship_address": address.strip()[:400],
                "slip_type": "subscription",
                "carrier_id": carrier_id,
                "origin_region": orders.origin_region[:16],
                "dest_region": (region or "")[:16],
                "ad_id": ad_id,
                "category": "通常",
                "allocation": "電話",
                "received_on": received,
                "ship_on": ship_on,
                "deliver_on": delivery_date(ship_on, lead_days),
                "time_slot": "",
                "payment_method": payment,
                "payment_status": "unpaid",
                "subtotal": q.subtotal,
                "discount": q.discount,
                "shipping_fee": q.shipping_fee,
                "cod_fee": q.cod_fee,
                "tax": q.tax,
                "total": q.total,
                "status": "confirmed",
                "note": "",
                "subscription_id": sid,
                "subscription_due_on": due,
            }
        )
    created: dict[int, int] = {}  # sid -> order id
    if values:
        if session.get_bind().dialect.name == "postgresql":
            # Ids taken from the sequence first, so the 受注番号 goes in with the row.
            new_ids = await session.scalars(
                text(
                    "SELECT nextval(pg_get_serial_sequence('orders', 'id')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": len(values)},
            )
            for v, oid in zip(values, new_ids, strict=True):
                v["id"] = oid
                v["number"] = f"{v['received_on']:%Y%m%d}-{oid:07d}"
            res = await _insert_rows(
                session,
                Order,
                values,
                "ON CONFLICT (subscription_id, subscription_due_on) DO NOTHING "
                "RETURNING id, subscription_id",
            )
        else:
            stmt = (
                sqlite_insert(Order)
                .on_conflict_do_nothing(index_elements=["subscription_id", "subscription_due_on"])
                .returning(Order.id, Order.subscription_id)
            )
            res = await session.execute(stmt, values)
        for oid, sid in res.all():
            created[sid] = oid
        result.created += len(created)
        result.existing += len(values) - len(created)
    if created:
        order_ids = list(created.values())
        if session.get_bind().dialect.name != "postgresql":
            await session.execute(
                update(Order)
                .where(Order.id.in_(order_ids))
                .values(number=_sqlite_number_expr())
                .execution_options(synchronize_session=False)
            )
        line_rows: list[dict[str, Any]] = []
        action_rows: list[dict[str, Any]] = []
        cid_of = {r[0]: r[1] for r in rows}
        for sid, oid in created.items():
            lines, total, _ = planned[sid]
            for x in lines:
                line_rows.append(
                    {
                        "order_id": oid,
                        "position": x.position,
                        "product_id": x.product_id,
                        "product_code": x.code,
                        "product_name": x.name,
                        "quantity": x.quantity,
                        "unit_price": x.unit_price,
                        "amount": x.amount,
                        "tax_class": x.tax_class,
                        "is_present": x.is_present,
                        "parent_position": x.parent_position,
                    }
                )
            summary = product_summary([(x.name, x.quantity) for x in lines if x.kind == "item"])
            action_rows.append(
                {
                    "customer_id": cid_of[sid],
                    "kind": "order",
                    "order_id": oid,
                    "amount": total,
                    "content": f"定期 {summary}",
                    "result": "",
                }
            )
        await _insert_rows(session, OrderLine, line_rows)
        await _insert_rows(session, Action, action_rows)
    # Move each subscription on whose order exists now (made here or by another run), once:
    # only while its next_date is still the due date this run saw.
    moves: dict[tuple[dt.date, dt.date], list[int]] = defaultdict(list)
    for r in rows:
        if r[0] in planned:
            moves[(r[2], planned[r[0]][2])].append(r[0])
    for (due, nxt), sids in moves.items():
        await session.execute(
            update(Subscription)
            .where(Subscription.id.in_(sids), Subscription.next_date == due)
            .values(
                next_date=nxt,
                status="active",
                paused_until=None,
                version=Subscription.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
    return ids[-1], len(rows)


async def count_due(session: AsyncSession, *, day: dt.date) -> int:
    """How many subscriptions are due on or before ``day``."""
    return int(
        await session.scalar(
            select(func.count()).select_from(Subscription).where(due_condition(day))
        )
        or 0
    )


async def run_daily(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    day: dt.date,
    orders: OrdersConfig,
    today: dt.date | None = None,
    progress: Progress | None = None,
    staff_id: int | None = None,
) -> RunResult:
    """Make the orders of every subscription due on or before ``day`` (S2); each batch of
    :data:`BATCH` subscriptions is one transaction. Safe to run again or concurrently.
    ``today`` (default: the JST date) dates the orders of due dates already past."""
    result = RunResult(day=day)
    today = today or dt.datetime.now(JST).date()
    async with sessionmaker() as session:
        result.due = await count_due(session, day=day)
        postgres = session.get_bind().dialect.name == "postgresql"
    token = uuid.uuid4().hex[:8]
    seen = 0
    lanes = LANES if postgres else 1

    async def lane(k: int) -> None:
        nonlocal seen
        after_id = 0
        while True:
            async with sessionmaker() as session, session.begin():
                after_id, n = await _batch(
                    session,
                    day=day,
                    today=today,
                    after_id=after_id,
                    orders=orders,
                    result=result,
                    token=f"{token}{k}",
                    lane=(k, lanes),
                )
            if n == 0:
                return
            seen += n
            if progress is not None:
                total = max(result.due, seen)
                await progress(min(seen, total), total, result.message)

    await asyncio.gather(*(lane(k) for k in range(lanes)))
    async with sessionmaker() as session, session.begin():
        await record(
            session,
            action="subscription_run",
            entity="subscription",
            staff_id=staff_id,
            changes={
                "day": day.isoformat(),
                "created": result.created,
                "existing": result.existing,
                "problems": {str(k): v for k, v in list(result.problems.items())[:100]},
            },
        )
    return result
