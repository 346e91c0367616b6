"""ランク再計算 (R1, X8): every customer's rank from the rank master, set-based.

A customer gets the best active rank (lowest 順位) whose thresholds are all met: at least
``min_orders`` orders and ``min_amount`` yen (order totals, tax included) and, when the rank has
``max_recency_days``, a last order no older than that. Cancelled and returned orders do not
count. Merged customers are left alone.

Three statements whatever the number of customers: the changes go into a temporary table
(orders grouped per customer, joined to customers, the rank as a CASE over the few ranks),
one audit row per change is inserted from it (the monitor's 変更履歴 shows
"ランク: ゴールド → プラチナ", purpose ランク再計算), and ``UPDATE customers … FROM`` applies it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    String,
    and_,
    case,
    cast,
    column,
    func,
    insert,
    literal,
    null,
    select,
    table,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.audit.models import AuditLog
from app.customers.models import Customer
from app.db import UTCDateTime, utcnow
from app.masters.models import Rank
from app.orders.models import VOID_STATUSES, Order

PURPOSE = "ランク再計算"
HISTORY_LABEL = "ランク"  # the 変更履歴 shows the key of the change as its label
_CHANGES = table(
    "rank_changes",
    column("customer_id", Integer),
    column("old_rank", Integer),
    column("new_rank", Integer),
)


async def recalculate_ranks(
    session: AsyncSession, *, today: dt.date, staff_id: int | None = None
) -> int:
    """Recalculate every customer's rank as of ``today``; return how many changed.

    Each change is recorded in the customer's history (audit log, entity ``customer``, action
    ``update``, changes ``{"ランク": [old name, new name]}``). With no active rank nothing is
    changed. Runs in the caller's transaction.
    """
    ranks = list(
        await session.scalars(
            select(Rank).where(Rank.active.is_(True)).order_by(Rank.sort_order, Rank.id)
        )
    )
    if not ranks:
        return 0
    counted = (
        select(
            Order.customer_id.label("customer_id"),
            func.count(Order.id).label("n"),
            func.sum(Order.total).label("amount"),
            func.max(Order.received_on).label("last_on"),
        )
        .where(Order.status.not_in(VOID_STATUSES))
        .group_by(Order.customer_id)
        .subquery("counted")
    )
    n = func.coalesce(counted.c.n, 0)
    amount = func.coalesce(counted.c.amount, 0)
    whens: list[tuple[Any, Any]] = []
    for r in ranks:
        conds: list[Any] = [n >= r.min_orders, amount >= r.min_amount]
        if r.max_recency_days is not None:
            cutoff = today - dt.timedelta(days=r.max_recency_days)
            conds.append(counted.c.last_on >= literal(cutoff, Date))
        whens.append((and_(*conds), r.id))
    target = (
        select(
            Customer.id.label("customer_id"),
            Customer.rank_id.label("old_rank"),
            case(*whens, else_=null()).label("new_rank"),
        )
        .outerjoin(counted, counted.c.customer_id == Customer.id)
        .where(Customer.merged_into_id.is_(None))
        .subquery("target")
    )
    await session.execute(text("DROP TABLE IF EXISTS rank_changes"))
    await session.execute(
        text(
            "CREATE TEMPORARY TABLE rank_changes "
            "(customer_id INTEGER PRIMARY KEY, old_rank INTEGER, new_rank INTEGER)"
        )
    )
    await session.execute(
        insert(_CHANGES).from_select(
            ["customer_id", "old_rank", "new_rank"],
            select(target.c.customer_id, target.c.old_rank, target.c.new_rank).where(
                target.c.old_rank.is_distinct_from(target.c.new_rank)
            ),
        )
    )
    changed = int(await session.scalar(select(func.count()).select_from(_CHANGES)) or 0)
    if changed:
        await session.execute(_history_insert(session, staff_id=staff_id))
        await session.execute(
            update(Customer)
            .where(Customer.id == _CHANGES.c.customer_id)
            .values(rank_id=_CHANGES.c.new_rank),
            execution_options={"synchronize_session": False},
        )
    await session.execute(text("DROP TABLE rank_changes"))
    return changed


def _history_insert(session: AsyncSession, *, staff_id: int | None) -> Any:
    """INSERT INTO audit_log … SELECT one row per change."""
    old = aliased(Rank)
    new = aliased(Rank)
    label = cast(literal(HISTORY_LABEL), String)
    if session.get_bind().dialect.name == "postgresql":
        changes: Any = func.json_build_object(label, func.json_build_array(old.name, new.name))
    else:
        changes = func.json_object(label, func.json_array(old.name, new.name))
    rows = (
        select(
            literal(utcnow(), UTCDateTime),
            cast(literal(staff_id) if staff_id is not None else null(), Integer),
            cast(literal("update"), String),
            cast(literal("customer"), String),
            _CHANGES.c.customer_id,
            changes,
            cast(literal(PURPOSE), String),
            cast(literal(""), String),
        )
        .select_from(_CHANGES)
        .outerjoin(old, old.id == _CHANGES.c.old_rank)
        .outerjoin(new, new.id == _CHANGES.c.new_rank)
    )
    return insert(AuditLog).from_select(
        ["at", "staff_id", "action", "entity", "entity_id", "changes", "purpose", "ip"], rows
    )
