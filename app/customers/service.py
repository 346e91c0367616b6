"""Customers: look-up across every phone, summaries for the pop-up, registration."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Date, Integer, String, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.customers.keys import kana_key, name_key
from app.customers.models import PHONE_KINDS, Customer, CustomerEmail, CustomerPhone
from app.db import UTCDateTime
from app.inputs import normalise
from cti_bridge.numbers import display_national, last8, normalise_stored


@dataclass
class PhoneMatch:
    """How a caller's number matched: ``exact`` / ``partial`` (last 8 digits) / ``none``."""

    kind: str
    customer_ids: list[int]


_BY_E164_SQL = text(
    """
    SELECT DISTINCT p.customer_id FROM customer_phones p
    JOIN customers c ON c.id = p.customer_id
    WHERE p.e164 = :number AND c.merged_into_id IS NULL
    ORDER BY p.customer_id LIMIT 20
    """
)
_BY_LAST8_SQL = text(
    """
    SELECT DISTINCT p.customer_id FROM customer_phones p
    JOIN customers c ON c.id = p.customer_id
    WHERE p.last8 = :last8 AND c.merged_into_id IS NULL
    ORDER BY p.customer_id LIMIT 20
    """
)


async def find_by_number(session: AsyncSession, *, e164: str) -> PhoneMatch:
    """Every active customer with this number on any of their phones (exact E.164 match first,
    then the last 8 digits, flagged as a partial match)."""
    if not e164:
        return PhoneMatch("none", [])
    ids = list((await session.scalars(_BY_E164_SQL, {"number": e164})).all())
    if ids:
        return PhoneMatch("exact", ids)
    tail = last8(e164)
    if len(tail) == 8:
        ids = list((await session.scalars(_BY_LAST8_SQL, {"last8": tail})).all())
        if ids:
            return PhoneMatch("partial", ids)
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


def _interval_label(unit: str, n: int) -> str:
    if unit == "week":
        return f"{n}週ごと"
    return "毎月" if n == 1 else f"{n}ヶ月ごと"


# The pop-up's queries are on the hot path (caller ID → pop): prebuilt, constant-text SQL with
# typed result columns, so neither statement building nor the server's planner (the driver
# prepares repeated statements) costs anything per call.
_CARDS_SQL = text(
    """
    SELECT c.id, c.code, c.name, c.kana, c.prefecture, c.city, c.street, c.alert,
           c.karte, r.name AS rank_name, s.name AS staff_name
    FROM customers c
    LEFT JOIN ranks r ON r.id = c.rank_id
    LEFT JOIN staff s ON s.id = c.staff_id
    WHERE c.id IN :ids
    """
).bindparams(bindparam("ids", expanding=True))
_PHONES_SQL = text(
    """
    SELECT customer_id, e164, raw, kind FROM customer_phones
    WHERE customer_id IN :ids ORDER BY customer_id, position
    """
).bindparams(bindparam("ids", expanding=True))
_LAST_ORDER_SQL = text(
    """
    SELECT o.received_on, o.total, l.product_name, l.quantity
    FROM (SELECT id, received_on, total FROM orders
          WHERE customer_id = :cid AND status <> 'cancelled'
          ORDER BY received_on DESC, id DESC LIMIT 1) o
    LEFT JOIN order_lines l ON l.order_id = o.id AND l.parent_position IS NULL
    ORDER BY l.position
    """
).columns(received_on=Date(), total=Integer(), product_name=String(), quantity=Integer())
_SUBS_SQL = text(
    """
    SELECT s.id, s.interval_unit, s.interval_n, s.next_date, p.name, i.quantity
    FROM subscriptions s
    JOIN subscription_items i ON i.subscription_id = s.id
    JOIN products p ON p.id = i.product_id
    WHERE s.customer_id = :cid AND s.status = 'active'
    ORDER BY s.id, i.id
    """
).columns(
    id=Integer(),
    interval_unit=String(),
    interval_n=Integer(),
    next_date=Date(),
    name=String(),
    quantity=Integer(),
)
_LAST_RESPONSE_SQL = text(
    """
    SELECT responded_at, category, content FROM responses
    WHERE customer_id = :cid ORDER BY responded_at DESC, id DESC LIMIT 1
    """
).columns(responded_at=UTCDateTime(), category=String(), content=String())


# PostgreSQL: the whole card of one customer in one round trip.
_CARD_PG_SELECT = """
    SELECT c.id, c.code, c.name, c.kana, c.prefecture, c.city, c.street, c.alert, c.karte,
           r.name AS rank_name, s.name AS staff_name,
           (SELECT string_agg(p.e164 || chr(31) || p.raw || chr(31) || p.kind, chr(30)
                              ORDER BY p.position)
              FROM customer_phones p WHERE p.customer_id = c.id) AS phones,
           lo.received_on, lo.total,
           (SELECT string_agg(l.product_name || '×' || l.quantity, '、' ORDER BY l.position)
              FROM order_lines l
             WHERE l.order_id = lo.id AND l.parent_position IS NULL) AS order_lines,
           (SELECT string_agg(sb.id || chr(31) || sb.interval_unit || chr(31) || sb.interval_n
                              || chr(31) || coalesce(sb.next_date::text, '') || chr(31)
                              || pr.name || '×' || si.quantity, chr(30) ORDER BY sb.id, si.id)
              FROM subscriptions sb
              JOIN subscription_items si ON si.subscription_id = sb.id
              JOIN products pr ON pr.id = si.product_id
             WHERE sb.customer_id = c.id AND sb.status = 'active') AS subs,
           lr.responded_at, lr.category, lr.content
    FROM customers c
    LEFT JOIN ranks r ON r.id = c.rank_id
    LEFT JOIN staff s ON s.id = c.staff_id
    LEFT JOIN LATERAL (SELECT id, received_on, total FROM orders
                        WHERE customer_id = c.id AND status <> 'cancelled'
                        ORDER BY received_on DESC, id DESC LIMIT 1) lo ON true
    LEFT JOIN LATERAL (SELECT responded_at, category, content FROM responses
                        WHERE customer_id = c.id
                        ORDER BY responded_at DESC, id DESC LIMIT 1) lr ON true
"""
_CARD_PG_TYPES: dict[str, Any] = {
    "id": Integer(),
    "code": String(),
    "name": String(),
    "kana": String(),
    "prefecture": String(),
    "city": String(),
    "street": String(),
    "alert": String(),
    "karte": String(),
    "rank_name": String(),
    "staff_name": String(),
    "phones": String(),
    "received_on": Date(),
    "total": Integer(),
    "order_lines": String(),
    "subs": String(),
    "responded_at": UTCDateTime(),
    "category": String(),
    "content": String(),
}
_CARD_PG_SQL = text(_CARD_PG_SELECT + "    WHERE c.id = :cid\n").columns(**_CARD_PG_TYPES)


def _card_from_row(row: Any) -> CustomerCard:
    """The card's own columns (both card queries select them under the same names)."""
    return CustomerCard(
        id=row.id,
        code=row.code,
        name=row.name,
        kana=row.kana,
        address=f"{row.prefecture}{row.city}{row.street}",
        rank=row.rank_name or "",
        alert=row.alert,
        has_karte=bool(row.karte),
        staff_name=row.staff_name or "",
    )


# PostgreSQL: the customers with this number (exact) and, when there is exactly one, their
# whole card, in one statement; ``app.calls`` wraps it to also pick the pop's operators.
POP_LOOKUP_PG_SELECT = (
    """
    WITH m AS (
        SELECT DISTINCT p.customer_id FROM customer_phones p
        JOIN customers c ON c.id = p.customer_id
        WHERE p.e164 = :number AND c.merged_into_id IS NULL
        ORDER BY p.customer_id LIMIT 20
    ), one AS (
        SELECT CASE WHEN (SELECT count(*) FROM m) = 1 THEN (SELECT customer_id FROM m) END AS cid
    )
    SELECT (SELECT array_agg(customer_id ORDER BY customer_id) FROM m) AS ids, card.*
    FROM one LEFT JOIN LATERAL (
"""
    + _CARD_PG_SELECT
    + """    WHERE c.id = one.cid
    ) card ON true
    """
)
POP_LOOKUP_PG_TYPES = _CARD_PG_TYPES
_POP_LOOKUP_PG_SQL = text(POP_LOOKUP_PG_SELECT).columns(**_CARD_PG_TYPES)


async def pop_lookup(session: AsyncSession, *, e164: str) -> tuple[PhoneMatch, list[CustomerCard]]:
    """What a ringing call's pop shows: every customer with this number (exact, else last 8
    digits) and their cards — the full card of a single match, short ones of several. On
    PostgreSQL the usual case (an exact match) is one round trip."""
    if e164 and session.get_bind().dialect.name == "postgresql":
        row = (await session.execute(_POP_LOOKUP_PG_SQL, {"number": e164})).first()
        return await pop_from_pg_row(session, row=row, e164=e164)
    match = await find_by_number(session, e164=e164)
    return match, await cards_for_match(session, match=match)


async def pop_from_pg_row(
    session: AsyncSession, *, row: Any, e164: str
) -> tuple[PhoneMatch, list[CustomerCard]]:
    """The match and cards from a row of ``POP_LOOKUP_PG_SELECT`` (a partial, last-8-digits
    match or several customers take further queries)."""
    ids = list(row.ids or []) if row is not None else []
    if len(ids) == 1 and row is not None and row.id is not None:
        return PhoneMatch("exact", ids), [_card_pg_from_row(row)]
    if ids:
        return PhoneMatch("exact", ids), await customer_cards(
            session, customer_ids=ids, detail=False
        )
    match = await find_by_number(session, e164=e164)
    return match, await cards_for_match(session, match=match)


async def cards_for_match(session: AsyncSession, *, match: PhoneMatch) -> list[CustomerCard]:
    """The full card of a single match; the chooser's short cards of several."""
    if len(match.customer_ids) == 1:
        return await customer_cards(session, customer_ids=match.customer_ids)
    if match.customer_ids:
        return await customer_cards(session, customer_ids=match.customer_ids, detail=False)
    return []


async def _card_pg(session: AsyncSession, cid: int) -> CustomerCard | None:
    row = (await session.execute(_CARD_PG_SQL, {"cid": cid})).first()
    return _card_pg_from_row(row) if row is not None else None


def _card_pg_from_row(row: Any) -> CustomerCard:
    card = _card_from_row(row)
    for item in (row.phones or "").split("\x1e"):
        if item:
            e164, raw, kind = item.split("\x1f")
            card.phones.append((display_national(e164) or raw, PHONE_KINDS.get(kind, kind)))
    if row.received_on is not None:
        card.last_order = (row.received_on, row.order_lines or "", row.total)
    by_sub: dict[str, SubscriptionLine] = {}
    for item in (row.subs or "").split("\x1e"):
        if not item:
            continue
        sid, unit, n, next_date, product = item.split("\x1f")
        line = by_sub.get(sid)
        if line is None:
            day = dt.date.fromisoformat(next_date) if next_date else None
            line = by_sub[sid] = SubscriptionLine("", _interval_label(unit, int(n)), day)
            card.subscriptions.append(line)
        line.products = "、".join(p for p in (line.products, product) if p)
    if row.responded_at is not None:
        card.last_response = (row.responded_at, row.category, row.content)
    return card


async def customer_cards(
    session: AsyncSession, *, customer_ids: list[int], detail: bool = True
) -> list[CustomerCard]:
    """Summaries of these customers, in the given order.

    Two queries for any number of customers; ``detail=True`` adds three per customer (last
    order with its lines, active subscriptions, last response) — used for the one customer a
    pop shows in full. ``detail=False`` gives what a chooser lists (name, kana, code,
    address, rank, phones).
    """
    if not customer_ids:
        return []
    if detail and len(customer_ids) == 1 and session.get_bind().dialect.name == "postgresql":
        one = await _card_pg(session, customer_ids[0])
        return [one] if one is not None else []
    cards: dict[int, CustomerCard] = {}
    for row in await session.execute(_CARDS_SQL, {"ids": customer_ids}):
        cards[row.id] = _card_from_row(row)
    for cid, e164, raw, kind in await session.execute(_PHONES_SQL, {"ids": customer_ids}):
        cards[cid].phones.append((display_national(e164) or raw, PHONE_KINDS.get(kind, kind)))
    if detail:
        for card in cards.values():
            await _add_details(session, card)
    return [cards[i] for i in customer_ids if i in cards]


async def _add_details(session: AsyncSession, card: CustomerCard) -> None:
    params = {"cid": card.id}
    rows = (await session.execute(_LAST_ORDER_SQL, params)).all()
    if rows:
        names = "、".join(f"{r.product_name}×{r.quantity}" for r in rows if r.product_name)
        card.last_order = (rows[0].received_on, names, rows[0].total)
    by_sub: dict[int, SubscriptionLine] = {}
    for sid, unit, n, next_date, pname, qty in await session.execute(_SUBS_SQL, params):
        line = by_sub.get(sid)
        if line is None:
            line = by_sub[sid] = SubscriptionLine("", _interval_label(unit, n), next_date)
            card.subscriptions.append(line)
        line.products = "、".join(p for p in (line.products, f"{pname}×{qty}") if p)
    resp = (await session.execute(_LAST_RESPONSE_SQL, params)).first()
    if resp is not None:
        card.last_response = (resp.responded_at, resp.category, resp.content)


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
    postcode: str = "",
    prefecture: str = "",
    city: str = "",
    street: str = "",
    building: str = "",
    email: str = "",
    check_duplicates: bool = False,
    known_duplicates: Collection[int] = (),
) -> Customer:
    """Register a new customer with one phone (from the pop-up or search), optionally an
    address and an e-mail address.

    With ``check_duplicates`` the input is first checked for existing customers who may be the
    same person (名寄せ, ``app.customers.duplicates``): when there is one the operator has not
    seen yet (``known_duplicates``: the ids they were shown and chose to register past),
    ``DuplicatesFound`` carries them all and nothing is written. Bad input raises
    ``CustomerInputError``, also before anything is written.
    """
    from app.customers.duplicates import DuplicatesFound, find_candidates
    from app.customers.editing import bad_kana, normal_kana
    from app.customers.postcodes import address_errors, format_postcode, postcode_digits

    errors: dict[str, str] = {}
    name = name.strip()
    kana = normal_kana(kana)
    if not name:
        errors["name"] = "顧客名を入力してください。"
    elif len(name) > 100:
        errors["name"] = "顧客名は100文字以内で入力してください。"
    if bad_kana(kana):
        errors["kana"] = "顧客名かなはひらがなかカタカナで入力してください。"
    elif len(kana) > 100:
        errors["kana"] = "顧客名かなは100文字以内で入力してください。"
    number = normalise_stored(phone) if phone.strip() else None
    if number is not None and not number.number_e164:
        errors["phone"] = "電話番号の形式が正しくありません（例: 0952-32-6611）。"
    if phone_kind not in PHONE_KINDS:
        errors["phone_kind"] = "電話の種類を選んでください。"
    city, street, building = city.strip(), street.strip(), building.strip()
    prefecture = prefecture.strip()
    errors.update(
        address_errors(
            postcode=postcode, prefecture=prefecture, city=city, street=street, building=building
        )
    )
    postcode = format_postcode(postcode_digits(postcode) or "")
    email = normalise(email).lower()
    if email and (len(email) > 254 or not _EMAIL.fullmatch(email)):
        errors["email"] = "メールアドレスの形式が正しくありません（例: taro@example.jp）。"
    if errors:
        raise CustomerInputError(errors)
    if check_duplicates:
        candidates = await find_candidates(
            session, name=name, kana=kana, phones=[phone], email=email
        )
        if any(c.id not in known_duplicates for c in candidates):
            raise DuplicatesFound(candidates)
    customer = Customer(
        code="new-" + uuid.uuid4().hex[:12],  # replaced by the id-based code below
        name=name,
        kana=kana,
        name_key=name_key(name),
        kana_key=kana_key(kana),
        postcode=postcode,
        prefecture=prefecture,
        city=city,
        street=street,
        building=building,
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
    if email:
        customer.emails.append(CustomerEmail(address=email, position=0))
    session.add(customer)
    await session.flush()
    customer.code = customer_code(customer.id)
    await session.flush()
    changes = {"name": name, "kana": kana, "phone": phone.strip()}
    extra = {
        "postcode": postcode,
        "prefecture": prefecture,
        "city": city,
        "street": street,
        "building": building,
        "email": email,
    }
    changes.update({k: v for k, v in extra.items() if v})
    await record(
        session,
        action="create",
        entity="customer",
        entity_id=customer.id,
        staff_id=staff_id,
        changes=changes,
    )
    return customer


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass
class SearchResult:
    cards: list[CustomerCard]
    how: str  # phone / code / email / name / kana / "" (nothing to search)


_PHONE_SEPARATORS = re.compile(r"[-ー－‐―−()（）+\s]")


def like_prefix(value: str) -> str:
    """A LIKE pattern matching values that start with ``value`` (escape character ``\\``)."""
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
    bare = _PHONE_SEPARATORS.sub("", name_key(q))
    if "@" in q:
        how = "email"
        ids = list(
            (
                await session.scalars(
                    select(CustomerEmail.customer_id)
                    .join(Customer, Customer.id == CustomerEmail.customer_id)
                    .where(CustomerEmail.address == q.lower(), active)
                    .limit(limit)
                )
            ).all()
        )
    elif bare.isdigit():
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
                    .where(col.like(like_prefix(value), escape="\\"), active)
                    .order_by(col, Customer.id)
                    .limit(limit)
                )
            ).all()
        )
    return SearchResult(await customer_cards(session, customer_ids=ids, detail=False), how)
