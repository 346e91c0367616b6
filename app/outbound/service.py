"""Outbound work lists (D2): made from a dormant list, worked through by operators."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import Staff
from app.calls.models import Call
from app.customers.models import Customer
from app.db import utcnow
from app.outbound.dormant import DormantFilters, dormant_ids
from app.outbound.models import (
    RESULTS,
    RETRY_RESULTS,
    OutboundEntry,
    OutboundList,
    OutboundOperator,
)
from app.responses.models import Action

MAX_ENTRIES = 5000
# An entry an operator opened stays theirs this long (then another operator may take it).
LOCK_MINUTES = 30


class OutboundInputError(ValueError):
    """Bad input: ``errors`` maps each field to its Japanese message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


async def create_list(
    session: AsyncSession,
    *,
    name: str,
    filters: DormantFilters,
    operator_ids: list[int],
    created_by: int | None,
    limit: int = MAX_ENTRIES,
) -> OutboundList:
    """A work list of the dormant customers ``filters`` find (電話不可 and merged customers
    never enter it), assigned to these operators."""
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "リスト名を入力してください。"
    if not operator_ids:
        errors["operators"] = "担当オペレータを選んでください。"
    if errors:
        raise OutboundInputError(errors)
    call_filters = DormantFilters(**{**filters.__dict__, "exclude_no_call": True})
    ids = await dormant_ids(session, filters=call_filters, limit=limit)
    if not ids:
        raise OutboundInputError({"name": "条件に合う顧客がいません（電話不可の顧客は除きます）。"})
    lst = OutboundList(
        name=name.strip()[:100], criteria=filters.as_dict(), created_by=created_by, active=True
    )
    session.add(lst)
    await session.flush()
    for sid in sorted(set(operator_ids)):
        session.add(OutboundOperator(list_id=lst.id, staff_id=sid))
    now = utcnow()
    session.add_all(
        OutboundEntry(list_id=lst.id, customer_id=cid, position=i, updated_at=now)
        for i, cid in enumerate(ids)
    )
    await session.flush()
    return lst


@dataclass
class ListSummary:
    work_list: OutboundList
    operators: list[str]
    total: int
    done: int
    due: int  # entries that can be called now


def _callable_now(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        OutboundEntry.status == "pending",
        and_(OutboundEntry.status == "callback", OutboundEntry.callback_at <= now),
    )


async def lists_for(session: AsyncSession, *, staff_id: int, everyone: bool) -> list[ListSummary]:
    """Active work lists: every list for a supervisor, the assigned ones for an operator."""
    stmt = select(OutboundList).where(OutboundList.active.is_(True)).order_by(OutboundList.id)
    if not everyone:
        stmt = stmt.where(
            OutboundList.id.in_(
                select(OutboundOperator.list_id).where(OutboundOperator.staff_id == staff_id)
            )
        )
    lists = list((await session.scalars(stmt)).all())
    if not lists:
        return []
    ids = [lst.id for lst in lists]
    now = utcnow()
    names: dict[int, list[str]] = {}
    for list_id, sname in (
        await session.execute(
            select(OutboundOperator.list_id, Staff.name)
            .join(Staff, Staff.id == OutboundOperator.staff_id)
            .where(OutboundOperator.list_id.in_(ids))
            .order_by(Staff.id)
        )
    ).all():
        names.setdefault(list_id, []).append(sname)
    counts: dict[int, tuple[int, int, int]] = {}
    done = func.sum(case((OutboundEntry.status == "done", 1), else_=0))
    due = func.sum(case((_callable_now(now), 1), else_=0))
    for row in (
        await session.execute(
            select(OutboundEntry.list_id, func.count(), done, due)
            .where(OutboundEntry.list_id.in_(ids))
            .group_by(OutboundEntry.list_id)
        )
    ).all():
        counts[row[0]] = (int(row[1]), int(row[2] or 0), int(row[3] or 0))
    return [
        ListSummary(lst, names.get(lst.id, []), *counts.get(lst.id, (0, 0, 0))) for lst in lists
    ]


async def can_work(session: AsyncSession, *, list_id: int, staff_id: int, everyone: bool) -> bool:
    if everyone:
        return True
    return (
        await session.get(OutboundOperator, {"list_id": list_id, "staff_id": staff_id})
    ) is not None


async def next_entry(session: AsyncSession, *, list_id: int, staff_id: int) -> OutboundEntry | None:
    """The next customer to call for this operator: their own entry still open, else a
    call-back that is due, else the next pending entry nobody holds. 電話不可 and merged
    customers are skipped (and marked 対象外)."""
    now = utcnow()
    stale = now - dt.timedelta(minutes=LOCK_MINUTES)
    # Customers who became 電話不可 or were merged since the list was made: 対象外, in one go.
    for label, cond in (
        ("電話不可", Customer.no_call.is_(True)),
        ("統合済", Customer.merged_into_id.is_not(None)),
    ):
        await session.execute(
            update(OutboundEntry)
            .where(
                OutboundEntry.list_id == list_id,
                OutboundEntry.status.in_(("pending", "callback")),
                OutboundEntry.customer_id.in_(select(Customer.id).where(cond)),
            )
            .values(status="skipped", result=label, locked_at=None)
            .execution_options(synchronize_session=False)
        )
    # Each pass returns, or takes one entry out of the running (skipped, or claimed by
    # another operator meanwhile), so the loop ends; the bound is only a guard.
    for _ in range(1000):
        entry = await session.scalar(
            select(OutboundEntry)
            .where(
                OutboundEntry.list_id == list_id,
                _callable_now(now),
                or_(
                    OutboundEntry.locked_at.is_(None),
                    OutboundEntry.locked_at < stale,
                    OutboundEntry.staff_id == staff_id,
                ),
            )
            .order_by(
                case(
                    (
                        and_(
                            OutboundEntry.staff_id == staff_id,
                            OutboundEntry.locked_at.is_not(None),
                        ),
                        0,
                    ),
                    else_=1,
                ),
                OutboundEntry.callback_at.is_(None),
                OutboundEntry.callback_at,
                OutboundEntry.position,
            )
            .limit(1)
        )
        if entry is None:
            return None
        customer = await session.get(Customer, entry.customer_id)
        if customer is None or customer.no_call or customer.merged_into_id is not None:
            entry.status = "skipped"
            entry.result = "電話不可" if customer is not None and customer.no_call else "統合済"
            await session.flush()
            continue
        claimed = await session.execute(
            update(OutboundEntry)
            .where(
                OutboundEntry.id == entry.id,
                or_(
                    OutboundEntry.locked_at.is_(None),
                    OutboundEntry.locked_at < stale,
                    OutboundEntry.staff_id == staff_id,
                ),
            )
            .values(staff_id=staff_id, locked_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) == 1:
            await session.refresh(entry)
            return entry
    return None


async def record_result(
    session: AsyncSession,
    *,
    entry_id: int,
    staff_id: int,
    result: str,
    callback_at: dt.datetime | None,
    note: str = "",
    dialled: str = "",
) -> tuple[OutboundEntry, Action]:
    """The outcome of one attempt: an action (電話, with the result) on the customer's
    history, and the entry done or waiting for its call-back. ``dialled``: the source's call
    id of this attempt's click-to-dial (the call is then the customer's and the action's)."""
    errors: dict[str, str] = {}
    if result not in RESULTS:
        errors["result"] = "結果を選んでください。"
    if result == "callback" and callback_at is None:
        errors["callback_at"] = "再コールの日時を入力してください。"
    if callback_at is not None and callback_at < utcnow() - dt.timedelta(minutes=1):
        errors["callback_at"] = "再コールの日時は今より後にしてください。"
    entry = await session.get(OutboundEntry, entry_id)
    if entry is None:
        raise OutboundInputError({"result": "この架電先は見つかりません。"})
    if entry.status in ("done", "skipped"):
        raise OutboundInputError({"result": "この架電先の結果は登録済みです。"})
    stale = utcnow() - dt.timedelta(minutes=LOCK_MINUTES)
    if (
        entry.staff_id not in (None, staff_id)
        and entry.locked_at is not None
        and entry.locked_at > stale
    ):
        raise OutboundInputError({"result": "この架電先は他のオペレータが対応中です。"})
    if errors:
        raise OutboundInputError(errors)
    label = RESULTS[result]
    talk = ""
    call = None
    if dialled:
        call = await session.scalar(
            select(Call).where(
                Call.source_call_id == dialled, Call.direction == "out", Call.staff_id == staff_id
            )
        )
    if call is not None:
        call.customer_id = call.customer_id or entry.customer_id
        if call.duration_s:
            talk = f"（通話 {call.duration_s // 60}分{call.duration_s % 60}秒）"
    action = Action(
        customer_id=entry.customer_id,
        kind="call_out",
        occurred_at=utcnow(),
        staff_id=staff_id,
        call_id=call.id if call is not None else None,
        result=label,
        content=f"架電 {label}{talk}" + (f" {note.strip()}" if note.strip() else ""),
    )
    session.add(action)
    entry.attempts += 1
    entry.result = label
    entry.staff_id = staff_id
    entry.locked_at = None
    entry.updated_at = utcnow()
    if result in RETRY_RESULTS:
        entry.status = "callback" if callback_at is not None else "pending"
        entry.callback_at = callback_at
        if callback_at is None:  # try again after the rest of the list
            top = await session.scalar(
                select(func.max(OutboundEntry.position)).where(
                    OutboundEntry.list_id == entry.list_id
                )
            )
            entry.position = int(top or 0) + 1
    else:
        entry.status = "done"
        entry.callback_at = None
    await session.flush()
    return entry, action


@dataclass
class DueCallback:
    entry_id: int
    list_name: str
    customer_id: int
    customer_name: str
    callback_at: dt.datetime | None
    staff_name: str


async def overdue_callbacks(
    session: AsyncSession, *, grace_minutes: int, limit: int = 50
) -> list[DueCallback]:
    """Call-backs of work lists whose time passed (by more than the grace)."""
    until = utcnow() - dt.timedelta(minutes=grace_minutes)
    rows = (
        await session.execute(
            select(
                OutboundEntry.id,
                OutboundList.name,
                OutboundEntry.customer_id,
                Customer.name,
                OutboundEntry.callback_at,
                Staff.name,
            )
            .join(OutboundList, OutboundList.id == OutboundEntry.list_id)
            .join(Customer, Customer.id == OutboundEntry.customer_id)
            .outerjoin(Staff, Staff.id == OutboundEntry.staff_id)
            .where(
                OutboundEntry.status == "callback",
                OutboundEntry.callback_at < until,
                OutboundList.active.is_(True),
            )
            .order_by(OutboundEntry.callback_at)
            .limit(limit)
        )
    ).all()
    return [DueCallback(r[0], r[1], r[2], r[3], r[4], r[5] or "") for r in rows]
