"""名寄せ: customers who may be the same person — before registration and as a batch list.

Every look-up goes through an index (``customer_phones.e164`` / ``last8``,
``customers.name_key`` / ``kana_key``, ``customer_emails.address``): the checks run against a
million customers while the operator waits. Merged customers (``merged_into_id`` set) never
count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Date, Integer, String, bindparam, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.customers.keys import kana_key, name_key
from app.customers.models import Customer, CustomerEmail, CustomerPhone
from app.customers.service import CustomerCard, customer_cards
from app.db import UTCDateTime
from cti_bridge.numbers import display_national, last8, normalise_stored

SAME_PHONE = "同じ電話番号"
SAME_PHONE_TAIL = "同じ電話番号（下8桁）"
SAME_NAME = "同姓同名"
SAME_KANA = "同じかな"
SAME_EMAIL = "同じメールアドレス"

# How strongly each reason suggests the same person (candidates are listed strongest first).
_WEIGHT = {SAME_PHONE: 8, SAME_EMAIL: 8, SAME_NAME: 4, SAME_PHONE_TAIL: 2, SAME_KANA: 1}
_ORDER = [SAME_PHONE, SAME_PHONE_TAIL, SAME_EMAIL, SAME_NAME, SAME_KANA]


@dataclass
class Candidate:
    """An existing customer who may be the one being registered, and why."""

    card: CustomerCard
    reasons: list[str]

    @property
    def id(self) -> int:
        return self.card.id


class DuplicatesFound(Exception):
    """Registration stopped before writing anything: these customers may be the same person."""

    def __init__(self, candidates: list[Candidate]) -> None:
        super().__init__(f"{len(candidates)} possible duplicate(s)")
        self.candidates = candidates


def phone_keys(phones: Sequence[str]) -> tuple[list[str], list[str]]:
    """E.164 numbers and their last 8 digits of the phones that parse (others are ignored)."""
    e164s: list[str] = []
    for raw in phones:
        number = normalise_stored(raw).number_e164 if raw and raw.strip() else ""
        if number and number not in e164s:
            e164s.append(number)
    tails = [t for t in dict.fromkeys(last8(n) for n in e164s) if len(t) == 8]
    return e164s, tails


async def find_candidates(
    session: AsyncSession,
    *,
    name: str,
    kana: str = "",
    phones: Sequence[str] = (),
    email: str = "",
    exclude_ids: Collection[int] = (),
    limit: int = 20,
) -> list[Candidate]:
    """Active customers with the same phone (E.164, or the last 8 digits), the same name
    (spaces and full/half width ignored), the same kana (any script) or the same e-mail, with
    the reasons; the strongest matches first, at most ``limit``."""
    reasons: dict[int, set[str]] = {}

    def add(cid: int, reason: str) -> None:
        if cid not in exclude_ids:
            reasons.setdefault(cid, set()).add(reason)

    active = Customer.merged_into_id.is_(None)
    e164s, tails = phone_keys(phones)
    if e164s:
        match = or_(CustomerPhone.e164.in_(e164s), CustomerPhone.last8.in_(tails or [""]))
        rows = await session.execute(
            select(CustomerPhone.customer_id, CustomerPhone.e164)
            .join(Customer, Customer.id == CustomerPhone.customer_id)
            .where(match, active)
            .order_by(CustomerPhone.customer_id)
            .limit(limit * 3)
        )
        for cid, e164 in rows:
            add(cid, SAME_PHONE if e164 in e164s else SAME_PHONE_TAIL)
    for col, key, reason in (
        (Customer.name_key, name_key(name), SAME_NAME),
        (Customer.kana_key, kana_key(kana), SAME_KANA),
    ):
        if not key:
            continue
        ids = await session.scalars(
            select(Customer.id).where(col == key, active).order_by(Customer.id).limit(limit)
        )
        for cid in ids:
            add(cid, reason)
    address = email.strip().lower()
    if address:
        ids = await session.scalars(
            select(CustomerEmail.customer_id)
            .join(Customer, Customer.id == CustomerEmail.customer_id)
            .where(CustomerEmail.address == address, active)
            .limit(limit)
        )
        for cid in ids:
            add(cid, SAME_EMAIL)
    ranked = sorted(reasons, key=lambda cid: (-sum(_WEIGHT[r] for r in reasons[cid]), cid))
    ranked = ranked[:limit]
    cards = await customer_cards(session, customer_ids=ranked, detail=False)
    return [Candidate(card, [r for r in _ORDER if r in reasons[card.id]]) for card in cards]


# --- the batch list -------------------------------------------------------------------------

MODES = {"name_phone": "氏名＋電話番号", "phone": "電話番号のみ"}

# One query per mode: phones shared by more than one row first (an index-only pass over
# ix_customer_phones_e164 that leaves a small fraction of the table), then the exact groups of
# active customers with GROUP BY/HAVING; the total number of groups comes from a window over
# the same grouping. Oldest registrations first, so the order stays put while groups are
# merged away.
_GROUPS_SQL = {
    "name_phone": """
    WITH shared AS (
        SELECT e164 FROM customer_phones GROUP BY e164 HAVING count(*) > 1
    )
    SELECT c.name_key AS name_key, p.e164 AS e164, count(DISTINCT c.id) AS members,
           min(c.id) AS first_id, count(*) OVER () AS total
    FROM shared s
    JOIN customer_phones p ON p.e164 = s.e164
    JOIN customers c ON c.id = p.customer_id
    WHERE c.merged_into_id IS NULL
    GROUP BY c.name_key, p.e164
    HAVING count(DISTINCT c.id) > 1
    ORDER BY min(c.id), c.name_key, p.e164
    LIMIT :limit OFFSET :offset
    """,
    "phone": """
    WITH shared AS (
        SELECT e164 FROM customer_phones GROUP BY e164 HAVING count(*) > 1
    )
    SELECT '' AS name_key, p.e164 AS e164, count(DISTINCT c.id) AS members,
           min(c.id) AS first_id, count(*) OVER () AS total
    FROM shared s
    JOIN customer_phones p ON p.e164 = s.e164
    JOIN customers c ON c.id = p.customer_id
    WHERE c.merged_into_id IS NULL
    GROUP BY p.e164
    HAVING count(DISTINCT c.id) > 1
    ORDER BY min(c.id), p.e164
    LIMIT :limit OFFSET :offset
    """,
}
_GROUP_COLUMNS: dict[str, Any] = {
    "name_key": String(),
    "e164": String(),
    "members": Integer(),
    "first_id": Integer(),
    "total": Integer(),
}
_MEMBERS_SQL = text(
    """
    SELECT DISTINCT c.id, c.name_key, p.e164
    FROM customer_phones p
    JOIN customers c ON c.id = p.customer_id
    WHERE p.e164 IN :e164s AND c.merged_into_id IS NULL
    """
).bindparams(bindparam("e164s", expanding=True))
_STATS_SQL = (
    text(
        """
        SELECT c.id, c.building, c.created_at,
               (SELECT count(*) FROM orders o
                 WHERE o.customer_id = c.id AND o.status <> 'cancelled') AS orders,
               (SELECT max(o.received_on) FROM orders o
                 WHERE o.customer_id = c.id AND o.status <> 'cancelled') AS last_order
        FROM customers c WHERE c.id IN :ids
        """
    )
    .bindparams(bindparam("ids", expanding=True))
    .columns(
        id=Integer(),
        building=String(),
        created_at=UTCDateTime(),
        orders=Integer(),
        last_order=Date(),
    )
)


@dataclass
class GroupMember:
    card: CustomerCard
    building: str
    created_at: dt.datetime
    orders: int
    last_order: dt.date | None

    @property
    def id(self) -> int:
        return self.card.id


@dataclass
class DuplicateGroup:
    """Active customers sharing a phone (and, in the default mode, the same name)."""

    name_key: str
    e164: str
    members: list[GroupMember] = field(default_factory=list)

    @property
    def phone(self) -> str:
        return display_national(self.e164) or self.e164

    @property
    def suggested_survivor(self) -> int:
        """The customer to keep: the most orders, then the oldest registration."""
        best = min(self.members, key=lambda m: (-m.orders, m.created_at, m.id))
        return best.id


@dataclass
class DuplicatePage:
    mode: str
    page: int
    per_page: int
    total: int
    groups: list[DuplicateGroup]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


async def duplicate_groups(
    session: AsyncSession, *, mode: str = "name_phone", page: int = 1, per_page: int = 30
) -> DuplicatePage:
    """One page of the batch duplicate list: groups of active customers sharing a phone and
    the name (``mode="name_phone"``) or only a phone (``mode="phone"``), each with its members
    (code, name, kana, address, phones, order count and last order date)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    page = max(1, page)
    sql = text(_GROUPS_SQL[mode]).columns(**_GROUP_COLUMNS)
    rows = (await session.execute(sql, {"limit": per_page, "offset": (page - 1) * per_page})).all()
    total = rows[0].total if rows else 0
    if not rows and page > 1:  # past the end (groups merged away): count them again
        return await duplicate_groups(session, mode=mode, page=1, per_page=per_page)
    groups = [DuplicateGroup(r.name_key, r.e164) for r in rows]
    if not groups:
        return DuplicatePage(mode, page, per_page, total, [])
    by_key = {(g.name_key, g.e164): g for g in groups}
    member_ids: dict[tuple[str, str], list[int]] = {key: [] for key in by_key}
    members = await session.execute(_MEMBERS_SQL, {"e164s": sorted({g.e164 for g in groups})})
    for cid, nkey, e164 in members:
        key = (nkey if mode == "name_phone" else "", e164)
        if key in member_ids and cid not in member_ids[key]:
            member_ids[key].append(cid)
    all_ids = sorted({cid for ids in member_ids.values() for cid in ids})
    cards = {c.id: c for c in await customer_cards(session, customer_ids=all_ids, detail=False)}
    stats = {r.id: r for r in await session.execute(_STATS_SQL, {"ids": all_ids})}
    for key, group in by_key.items():
        for cid in sorted(member_ids[key]):
            s = stats[cid]
            group.members.append(
                GroupMember(cards[cid], s.building, s.created_at, s.orders, s.last_order)
            )
    return DuplicatePage(mode, page, per_page, total, groups)
