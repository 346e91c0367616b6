"""The monitor header (M1): who is on the line, at a glance, over every tab."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditLog
from app.audit.service import record
from app.auth.models import Staff
from app.calls.models import Call
from app.customers.models import PHONE_KINDS, Customer, CustomerPhone
from app.masters.models import Rank
from cti_bridge.numbers import display_national

GENDERS = {"M": "男性", "F": "女性", "": "—"}


def age_on(birth: dt.date | None, today: dt.date) -> int | None:
    """Full years of age on ``today``."""
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


@dataclass
class Header:
    id: int
    code: str
    name: str
    kana: str
    owner: str
    age: int | None
    birth_month: int | None
    gender: str
    rank: str
    alert: str
    has_karte: bool
    karte: str | None  # None: this role may not read it
    merged_into_id: int | None
    phones: list[tuple[str, str, str]] = field(default_factory=list)  # display, kind, label


async def monitor_header(
    session: AsyncSession, *, customer_id: int, today: dt.date, may_read_karte: bool
) -> Header | None:
    """The header of one customer's monitor, or None when there is no such customer."""
    row = (
        await session.execute(
            select(Customer, Rank.name, Staff.name)
            .outerjoin(Rank, Rank.id == Customer.rank_id)
            .outerjoin(Staff, Staff.id == Customer.staff_id)
            .where(Customer.id == customer_id)
        )
    ).first()
    if row is None:
        return None
    c, rank, owner = row
    phones = await session.execute(
        select(CustomerPhone.e164, CustomerPhone.raw, CustomerPhone.kind, CustomerPhone.label)
        .where(CustomerPhone.customer_id == customer_id)
        .order_by(CustomerPhone.position, CustomerPhone.id)
    )
    return Header(
        id=c.id,
        code=c.code,
        name=c.name,
        kana=c.kana,
        owner=owner or "",
        age=age_on(c.birth_date, today),
        birth_month=c.birth_date.month if c.birth_date else None,
        gender=GENDERS.get(c.gender, "—"),
        rank=rank or "",
        alert=c.alert,
        has_karte=bool(c.karte.strip()),
        karte=c.karte if may_read_karte else None,
        merged_into_id=c.merged_into_id,
        phones=[
            (display_national(e164) or raw, PHONE_KINDS.get(kind, kind), label)
            for e164, raw, kind, label in phones
        ],
    )


async def log_karte_view(
    session: AsyncSession, *, customer_id: int, staff_id: int, ip: str = ""
) -> None:
    """A2: a カルテ shown to a member of staff is written to the audit log."""
    await record(
        session,
        action="view_karte",
        entity="customer",
        entity_id=customer_id,
        staff_id=staff_id,
        ip=ip,
    )


async def karte_viewed_since(
    session: AsyncSession, *, customer_id: int, staff_id: int, since: dt.datetime
) -> bool:
    """Whether this member of staff's view of the カルテ is already logged since ``since``
    (one entry per staff, customer and interval keeps the log readable)."""
    found = await session.scalar(
        select(AuditLog.id)
        .where(
            AuditLog.entity == "customer",
            AuditLog.entity_id == customer_id,
            AuditLog.at >= since,
            AuditLog.action == "view_karte",
            AuditLog.staff_id == staff_id,
        )
        .limit(1)
    )
    return found is not None


async def current_call(
    session: AsyncSession, *, call_id: int | None, staff_id: int, customer_id: int
) -> Call | None:
    """The call the monitor was opened from, when it is this operator's call for this customer
    (orders and responses entered in the monitor are recorded against it)."""
    if call_id is None:
        return None
    call = await session.get(Call, call_id)
    if call is None or call.staff_id != staff_id:
        return None
    if call.customer_id not in (None, customer_id):
        return None
    return call
