"""Customers: look-up across every phone, summaries for the pop-up, registration."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.audit.service import record
from app.auth.models import Staff
from app.customers.keys import kana_key, name_key
from app.customers.models import Customer, CustomerPhone
from app.masters.models import Product, Rank
from app.orders.models import Order, OrderLine
from app.responses.models import Response
from app.subscriptions.models import Subscription, SubscriptionItem
from cti_bridge.numbers import display_national, last8, normalise_stored

MAX_CANDIDATES = 20

PHONE_KINDS = {
    "home": "自宅",
    "mobile": "携帯",
    "office": "勤務先",
    "fax": "FAX",
    "other": "その他",
}


@dataclass
class PhoneMatch:
    """How a caller's number matched: ``exact`` / ``partial`` (last 8 digits) / ``none``."""

    kind: str
    customer_ids: list[int]


async def find_by_number(session: AsyncSession, *, e164: str) -> PhoneMatch:
    """Every active customer with this number on any of their phones (exact E.164 match first,
    then the last 8 digits, flagged as a partial match)."""
    if not e164:
        return PhoneMatch("none", [])
    base = (
        select(CustomerPhone.customer_id)
        .join(Customer, Customer.id == CustomerPhone.customer_id)
        .where(Customer.merged_into_id.is_(None))
        .distinct()
        .limit(MAX_CANDIDATES)
    )
    ids = list((await session.scalars(base.where(CustomerPhone.e164 == e164))).all())
    if ids:
        return PhoneMatch("exact", sorted(ids))
    tail = last8(e164)
    if len(tail) == 8:
        ids = list((await session.scalars(base.where(CustomerPhone.last8 == tail))).all())
        if ids:
            return PhoneMatch("partial", sorted(ids))
    return PhoneMatch("none", [])


@dataclass
class SubscriptionLine:
    products: str
    interval: str
    next_date: dt.date | None


@dataclass
class CustomerCard:
    """What the pop-up shows of one customer."""

    id: int
    code: str
    name: str
    kana: str
    address: str
    rank: str
    alert: str
    has_karte: bool
    staff_name: str
    phones: list[tuple[str, str]] = field(default_factory=list)  # (display, kind label)
    last_order: tuple[dt.date, str, int] | None = None  # (received_on, products, total)
    subscriptions: list[SubscriptionLine] = field(default_factory=list)
    last_response: tuple[dt.datetime, str, str] | None = None  # (at, category, content)


def _ids_clause(column: Any, ids: list[int]) -> Any:
    # One id (the usual pop) keeps the SQL text constant, so the driver prepares it once.
    return column == ids[0] if len(ids) == 1 else column.in_(ids)


def _interval_label(unit: str, n: int) -> str:
    if unit == "week":
        return f"{n}週ごと"
    return "毎月" if n == 1 else f"{n}ヶ月ごと"


async def customer_cards(
    session: AsyncSession, *, customer_ids: list[int], detail: bool = True
) -> list[CustomerCard]:
    """Summaries of these customers, in the given order.

    One query for any number of customers (phones aggregated, rank and 担当者 joined);
    ``detail=True`` adds the last response to that query and two queries per customer (last
    order with its lines, active subscriptions) — used for the one customer a pop shows in
    full. ``detail=False`` gives what a chooser lists (name, kana, code, address, rank, phones).
    """
    if not customer_ids:
        return []
    phone_item = (
        cast(CustomerPhone.position, String)
        + "|"
        + CustomerPhone.e164
        + "|"
        + CustomerPhone.kind
        + "|"
        + CustomerPhone.raw
    )
    phones = (
        select(func.aggregate_strings(phone_item, "\x1f"))
        .where(CustomerPhone.customer_id == Customer.id)
        .scalar_subquery()
    )
    columns: list[Any] = [Customer, Rank.name, Staff.name, phones]
    if detail:
        newest = aliased(Response)
        last = (
            select(newest.id)
            .where(newest.customer_id == Customer.id)
            .order_by(newest.responded_at.desc(), newest.id.desc())
            .limit(1)
            .correlate(Customer)
            .scalar_subquery()
        )
        columns += [
            select(col).where(Response.id == last).correlate(Customer).scalar_subquery()
            for col in (Response.responded_at, Response.category, Response.content)
        ]
    rows = (
        await session.execute(
            select(*columns)
            .outerjoin(Rank, Rank.id == Customer.rank_id)
            .outerjoin(Staff, Staff.id == Customer.staff_id)
            .where(_ids_clause(Customer.id, customer_ids))
        )
    ).all()
    cards: dict[int, CustomerCard] = {}
    for row in rows:
        c: Customer = row[0]
        card = cards[c.id] = CustomerCard(
            id=c.id,
            code=c.code,
            name=c.name,
            kana=c.kana,
            address=f"{c.prefecture}{c.city}{c.street}",
            rank=row[1] or "",
            alert=c.alert,
            has_karte=bool(c.karte),
            staff_name=row[2] or "",
        )
        items = sorted(
            (item.split("|", 3) for item in (row[3] or "").split("\x1f") if item),
            key=lambda parts: int(parts[0]),
        )
        card.phones = [
            (display_national(e164) or raw, PHONE_KINDS.get(kind, kind))
            for _pos, e164, kind, raw in items
        ]
        if detail and row[4] is not None:
            at = row[4]
            if isinstance(at, dt.datetime) and at.tzinfo is None:
                at = at.replace(tzinfo=dt.UTC)
            card.last_response = (at, row[5], row[6])
    if detail:
        for card in cards.values():
            await _add_details(session, card)
    return [cards[i] for i in customer_ids if i in cards]


async def _add_details(session: AsyncSession, card: CustomerCard) -> None:
    """Last order with its lines and active subscriptions of one customer: two indexed queries
    of constant text (prepared by the driver after a few calls)."""
    cid = card.id
    last = (
        select(Order.id, Order.received_on, Order.total)
        .where(Order.customer_id == cid, Order.status != "cancelled")
        .order_by(Order.received_on.desc(), Order.id.desc())
        .limit(1)
        .subquery()
    )
    rows = (
        await session.execute(
            select(last.c.received_on, last.c.total, OrderLine.product_name, OrderLine.quantity)
            .select_from(last)
            .outerjoin(OrderLine, OrderLine.order_id == last.c.id)
            .order_by(OrderLine.position)
        )
    ).all()
    if rows:
        names = "、".join(f"{r.product_name}×{r.quantity}" for r in rows if r.product_name)
        card.last_order = (rows[0].received_on, names, rows[0].total)

    subs = await session.execute(
        select(
            Subscription.id,
            Subscription.interval_unit,
            Subscription.interval_n,
            Subscription.next_date,
            Product.name,
            SubscriptionItem.quantity,
        )
        .join(SubscriptionItem, SubscriptionItem.subscription_id == Subscription.id)
        .join(Product, Product.id == SubscriptionItem.product_id)
        .where(Subscription.customer_id == cid, Subscription.status == "active")
        .order_by(Subscription.id, SubscriptionItem.id)
    )
    by_sub: dict[int, SubscriptionLine] = {}
    for sid, unit, n, next_date, pname, qty in subs:
        line = by_sub.get(sid)
        if line is None:
            line = by_sub[sid] = SubscriptionLine("", _interval_label(unit, n), next_date)
            card.subscriptions.append(line)
        line.products = "、".join(p for p in (line.products, f"{pname}×{qty}") if p)


class CustomerInputError(ValueError):
    """Bad input: ``errors`` maps each field to its Japanese message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def customer_code(customer_id: int) -> str:
    """お届け先コード: the id, zero-padded to 8 digits."""
    return f"{customer_id:08d}"


async def register_customer(
    session: AsyncSession,
    *,
    name: str,
    kana: str,
    phone: str,
    phone_kind: str = "home",
    staff_id: int | None,
) -> Customer:
    """Register a new customer with one phone (from the pop-up or search)."""
    errors: dict[str, str] = {}
    name = name.strip()
    kana = kana.strip()
    if not name:
        errors["name"] = "顧客名を入力してください。"
    elif len(name) > 100:
        errors["name"] = "顧客名は100文字以内で入力してください。"
    if len(kana) > 100:
        errors["kana"] = "顧客名かなは100文字以内で入力してください。"
    number = normalise_stored(phone) if phone.strip() else None
    if number is not None and not number.number_e164:
        errors["phone"] = "電話番号の形式が正しくありません（例: 0952-32-6611）。"
    if phone_kind not in PHONE_KINDS:
        errors["phone_kind"] = "電話の種類を選んでください。"
    if errors:
        raise CustomerInputError(errors)
    customer = Customer(
        code="new-" + uuid.uuid4().hex[:12],  # replaced by the id-based code below
        name=name,
        kana=kana,
        name_key=name_key(name),
        kana_key=kana_key(kana),
        staff_id=staff_id,
        flags={},
    )
    if number is not None:
        customer.phones.append(
            CustomerPhone(
                raw=phone.strip(),
                e164=number.number_e164,
                last8=last8(number.number_e164),
                kind=phone_kind,
                position=0,
            )
        )
    session.add(customer)
    await session.flush()
    customer.code = customer_code(customer.id)
    await session.flush()
    await record(
        session,
        action="create",
        entity="customer",
        entity_id=customer.id,
        staff_id=staff_id,
        changes={"name": name, "kana": kana, "phone": phone.strip()},
    )
    return customer


@dataclass
class SearchResult:
    cards: list[CustomerCard]
    how: str  # phone / code / email / name / kana / "" (nothing to search)


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search_customers(session: AsyncSession, *, q: str, limit: int = 50) -> SearchResult:
    """Search by any phone (any format), customer code, e-mail, name or kana (prefix)."""
    from app.customers.models import CustomerEmail

    q = q.strip()
    if not q:
        return SearchResult([], "")
    active = Customer.merged_into_id.is_(None)
    ids: list[int] = []
    how = ""
    digits = "".join(ch for ch in name_key(q) if ch.isdigit())
    if "@" in q:
        how = "email"
        ids = list(
            (
                await session.scalars(
                    select(CustomerEmail.customer_id)
                    .where(CustomerEmail.address == q.lower())
                    .limit(limit)
                )
            ).all()
        )
    elif digits and len(digits) >= len(name_key(q).replace("-", "").replace("+", "")) - 1:
        code = await session.scalar(select(Customer.id).where(Customer.code == name_key(q), active))
        if code is not None:
            how, ids = "code", [code]
        else:
            number = normalise_stored(q)
            how = "phone"
            if number.number_e164:
                ids = (await find_by_number(session, e164=number.number_e164)).customer_ids
    else:
        key = kana_key(q)
        is_kana = all("\u30a0" <= ch <= "\u30ff" for ch in key)
        col = Customer.kana_key if is_kana else Customer.name_key
        how = "kana" if is_kana else "name"
        value = key if is_kana else name_key(q)
        ids = list(
            (
                await session.scalars(
                    select(Customer.id)
                    .where(col.like(_like_prefix(value), escape="\\"), active)
                    .order_by(col, Customer.id)
                    .limit(limit)
                )
            ).all()
        )
    return SearchResult(await customer_cards(session, customer_ids=ids, detail=False), how)
