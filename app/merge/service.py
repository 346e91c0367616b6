"""統合 (merge): two registrations of one person become one customer.

The surviving customer takes over everything the merged one had — phones and e-mail addresses
(without duplicating those it already has), ship-to addresses, orders, responses, actions,
subscriptions and calls — and its empty fields are filled from the merged one. The merged
customer stays as a row pointing at the survivor (``merged_into_id``): never deleted, no longer
found by search or look-ups, its monitor showing where it went.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.calls.models import Call
from app.customers.history import MERGE_LABELS
from app.customers.keys import kana_key
from app.customers.models import Customer, CustomerEmail, CustomerPhone, ShipTo
from app.customers.service import CustomerInputError
from app.db import utcnow
from app.orders.models import Order
from app.responses.models import Action
from app.responses.models import Response as Resp
from app.subscriptions.models import Subscription

# Tables whose rows belong to a customer and move to the survivor as they are.
MOVED: tuple[tuple[str, Any, str], ...] = tuple(
    (key, model, MERGE_LABELS[key])
    for key, model in (
        ("ship_tos", ShipTo),
        ("orders", Order),
        ("responses", Resp),
        ("actions", Action),
        ("subscriptions", Subscription),
        ("calls", Call),
    )
)
# Fields filled on the survivor when empty there (the address as one block).
ADDRESS = ("postcode", "prefecture", "city", "street", "building")
FILLED_ALONE = ("kana", "company1", "company2", "birth_date", "gender")
FILLED_IDS = ("rank_id", "staff_id", "ad_id")
APPENDED = ("alert", "karte", "memo")
FIELD_LABELS = {
    "address": "住所",
    "kana": "顧客名かな",
    "company1": "会社部署名1",
    "company2": "会社部署名2",
    "birth_date": "生年月日",
    "gender": "性別",
    "rank_id": "ランク",
    "staff_id": "担当者",
    "ad_id": "広告",
    "no_call": "電話不可",
    "flags": "設定項目",
    "alert": "アラート",
    "karte": "カルテ",
    "memo": "メモ",
}


# Japanese names of the keys of a merge's audit entry (``MergePlan.changes``).
# How the keys of the audit entry are named (kept in app.customers.history, which shows them).
CHANGE_LABELS = MERGE_LABELS


@dataclass
class MergePlan:
    """What merging ``merged`` into ``survivor`` does, before it is done (for the confirm
    screen) and after (for the audit entries)."""

    survivor: Customer
    merged: Customer
    counts: dict[str, int] = field(default_factory=dict)  # table → rows moving
    duplicate_phones: list[str] = field(default_factory=list)  # already on the survivor
    duplicate_emails: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)  # FIELD_LABELS keys
    appended: list[str] = field(default_factory=list)
    keeps_old_address: bool = False  # see _keeps_old_address

    @property
    def filled_labels(self) -> list[str]:
        return [FIELD_LABELS[f] for f in self.filled]

    @property
    def appended_labels(self) -> list[str]:
        return [FIELD_LABELS[f] for f in self.appended]

    def changes(self) -> dict[str, Any]:
        """The audit entry's ``changes`` (the same on both customers); ``CHANGE_LABELS`` names
        the keys."""
        out: dict[str, Any] = {"source_id": self.merged.id, "target_id": self.survivor.id}
        out.update(self.counts)
        if self.duplicate_phones:
            out["duplicate_phones"] = self.duplicate_phones
        if self.duplicate_emails:
            out["duplicate_emails"] = self.duplicate_emails
        if self.filled:
            out["filled"] = self.filled_labels
        if self.appended:
            out["appended"] = self.appended_labels
        return out


def _has_address(c: Customer) -> bool:
    return any(getattr(c, f) for f in ADDRESS)


def _fills(survivor: Customer, merged: Customer) -> tuple[list[str], list[str]]:
    filled: list[str] = []
    if not _has_address(survivor) and _has_address(merged):
        filled.append("address")
    filled += [f for f in FILLED_ALONE if not getattr(survivor, f) and getattr(merged, f)]
    filled += [f for f in FILLED_IDS if getattr(survivor, f) is None and getattr(merged, f)]
    if merged.no_call and not survivor.no_call:
        filled.append("no_call")
    if set(merged.flags or {}) - set(survivor.flags or {}):
        filled.append("flags")
    appended = [
        f
        for f in APPENDED
        if getattr(merged, f).strip() and getattr(merged, f).strip() not in getattr(survivor, f)
    ]
    return filled, appended


async def _customers(
    session: AsyncSession, survivor_id: int, merged_id: int, *, lock: bool
) -> tuple[Customer, Customer]:
    errors: dict[str, str] = {}
    if survivor_id == merged_id:
        raise CustomerInputError({"merged": "同じ顧客どうしは統合できません。"})
    stmt = (
        select(Customer)
        .where(Customer.id.in_([survivor_id, merged_id]))
        .order_by(Customer.id)  # lock in id order: two merges never wait on each other
        .execution_options(populate_existing=True)
    )
    if lock:
        stmt = stmt.with_for_update()
    found = {c.id: c for c in (await session.scalars(stmt)).all()}
    survivor, merged = found.get(survivor_id), found.get(merged_id)
    for key, c in (("survivor", survivor), ("merged", merged)):
        if c is None:
            errors[key] = "顧客が見つかりません。"
        elif c.merged_into_id is not None:
            errors[key] = (
                f"お届け先コード {c.code} は既に {c.merged_into_id:08d} に統合されています。"
            )
    if errors:
        raise CustomerInputError(errors)
    assert survivor is not None and merged is not None
    return survivor, merged


async def plan_merge(session: AsyncSession, *, survivor_id: int, merged_id: int) -> MergePlan:
    """What merging would move and fill (nothing is written). Raises ``CustomerInputError``
    when the two cannot be merged (the same customer, unknown, or already merged)."""
    survivor, merged = await _customers(session, survivor_id, merged_id, lock=False)
    return await _plan(session, survivor, merged)


async def _plan(session: AsyncSession, survivor: Customer, merged: Customer) -> MergePlan:
    plan = MergePlan(survivor, merged)
    phones = (
        await session.scalars(
            select(CustomerPhone).where(CustomerPhone.customer_id.in_([survivor.id, merged.id]))
        )
    ).all()
    kept = {(p.e164 or p.raw) for p in phones if p.customer_id == survivor.id}
    mine = [p for p in phones if p.customer_id == merged.id]
    plan.duplicate_phones = [p.raw for p in mine if (p.e164 or p.raw) in kept]
    plan.counts["phones"] = len(mine) - len(plan.duplicate_phones)
    emails = (
        await session.scalars(
            select(CustomerEmail).where(CustomerEmail.customer_id.in_([survivor.id, merged.id]))
        )
    ).all()
    kept = {e.address.lower() for e in emails if e.customer_id == survivor.id}
    mine_e = [e for e in emails if e.customer_id == merged.id]
    plan.duplicate_emails = [e.address for e in mine_e if e.address.lower() in kept]
    plan.counts["emails"] = len(mine_e) - len(plan.duplicate_emails)
    for key, model, _label in MOVED:
        plan.counts[key] = int(
            await session.scalar(
                select(func.count()).select_from(model).where(model.customer_id == merged.id)
            )
            or 0
        )
    plan.filled, plan.appended = _fills(survivor, merged)
    plan.keeps_old_address = await _keeps_old_address(session, survivor, merged, plan.filled)
    return plan


async def _keeps_old_address(
    session: AsyncSession, survivor: Customer, merged: Customer, filled: list[str]
) -> bool:
    """Whether the merged customer's orders shipped to its own address, which differs from
    the survivor's: that address then becomes an inactive ship-to of the survivor, and those
    orders point at it, so their history keeps showing where they went."""
    if not _has_address(merged) or "address" in filled or _address(merged) == _address(survivor):
        return False
    first = await session.scalar(
        select(Order.id).where(Order.customer_id == merged.id, Order.ship_to_id.is_(None)).limit(1)
    )
    if first is not None:
        return True
    sub = await session.scalar(
        select(Subscription.id)
        .where(Subscription.customer_id == merged.id, Subscription.ship_to_id.is_(None))
        .limit(1)
    )
    return sub is not None


async def merge_customers(
    session: AsyncSession,
    *,
    survivor_id: int,
    merged_id: int,
    staff_id: int | None,
    purpose: str,
    versions: tuple[int, int] | None = None,
) -> MergePlan:
    """Merge customer ``merged_id`` into ``survivor_id`` and log it on both (action
    ``merge``, the counts moved in ``changes``).

    ``versions`` — the (survivor, merged) versions the confirm screen showed: when either
    customer changed since, nothing is merged. Raises ``CustomerInputError`` (nothing written)
    for the same customer twice, an unknown one, an already merged one or a stale screen.
    """
    survivor, merged = await _customers(session, survivor_id, merged_id, lock=True)
    if versions is not None and versions != (survivor.version, merged.version):
        raise CustomerInputError(
            {"merged": "確認画面を表示した後で顧客が変更されました。もう一度確認してください。"}
        )
    plan = MergePlan(survivor, merged)
    plan.filled, plan.appended = _fills(survivor, merged)
    plan.keeps_old_address = await _keeps_old_address(session, survivor, merged, plan.filled)

    # Phones and e-mail addresses: appended after the survivor's own; ones the survivor
    # already has are dropped (the audit entry lists them) so the merged row keeps none.
    phones = (
        await session.scalars(
            select(CustomerPhone)
            .where(CustomerPhone.customer_id.in_([survivor.id, merged.id]))
            .order_by(CustomerPhone.position, CustomerPhone.id)
        )
    ).all()
    merged_phone = next((p.raw for p in phones if p.customer_id == merged.id), "")
    moved, dropped = await _move_rows(
        session,
        [(p, p.e164 or p.raw, p.raw) for p in phones],
        survivor_id=survivor.id,
        merged_id=merged.id,
    )
    plan.counts["phones"], plan.duplicate_phones = moved, dropped
    emails = (
        await session.scalars(
            select(CustomerEmail)
            .where(CustomerEmail.customer_id.in_([survivor.id, merged.id]))
            .order_by(CustomerEmail.position, CustomerEmail.id)
        )
    ).all()
    moved, dropped = await _move_rows(
        session,
        [(e, e.address.lower(), e.address) for e in emails],
        survivor_id=survivor.id,
        merged_id=merged.id,
    )
    plan.counts["emails"], plan.duplicate_emails = moved, dropped

    # Orders that went to the merged customer's own address keep showing that address.
    if plan.keeps_old_address:
        old = ShipTo(
            customer_id=survivor.id,
            label=f"統合元 {merged.code} の住所",
            name=merged.name,
            kana=merged.kana,
            phone=merged_phone,
            active=False,
            **{f: getattr(merged, f) for f in ADDRESS},
        )
        session.add(old)
        await session.flush()
        await session.execute(
            update(Order)
            .where(Order.customer_id == merged.id, Order.ship_to_id.is_(None))
            .values(ship_to_id=old.id)
            .execution_options(synchronize_session=False)
        )
        # 定期 still running keep going to the address they were set up for
        running = await session.execute(
            update(Subscription)
            .where(
                Subscription.customer_id == merged.id,
                Subscription.ship_to_id.is_(None),
                Subscription.status != "cancelled",
            )
            .values(ship_to_id=old.id)
            .execution_options(synchronize_session=False)
        )
        if getattr(running, "rowcount", 0):
            old.active = True
            await session.flush()
    for key, model, _label in MOVED:
        result = await session.execute(
            update(model)
            .where(model.customer_id == merged.id)
            .values(customer_id=survivor.id)
            .execution_options(synchronize_session=False)
        )
        plan.counts[key] = cast(CursorResult[Any], result).rowcount
    # Customers merged earlier into the merged one now point at the survivor.
    result = await session.execute(
        update(Customer)
        .where(Customer.merged_into_id == merged.id)
        .values(merged_into_id=survivor.id)
        .execution_options(synchronize_session=False)
    )
    if chained := cast(CursorResult[Any], result).rowcount:
        plan.counts["merged_customers"] = chained

    _apply_fills(survivor, merged, plan)
    merged.merged_into_id = survivor.id
    survivor.updated_at = merged.updated_at = utcnow()
    await session.flush()
    for cid in (survivor.id, merged.id):
        await record(
            session,
            action="merge",
            entity="customer",
            entity_id=cid,
            staff_id=staff_id,
            changes=plan.changes(),
            purpose=purpose,
        )
    return plan


async def _move_rows(
    session: AsyncSession,
    rows: list[tuple[CustomerPhone | CustomerEmail, str, str]],
    *,
    survivor_id: int,
    merged_id: int,
) -> tuple[int, list[str]]:
    """Move the merged customer's phones (or e-mail addresses), given as (row, key, shown) in
    position order, behind the survivor's; those whose key the survivor has are deleted.
    Returns how many moved and the dropped ones."""
    kept = {key for row, key, _ in rows if row.customer_id == survivor_id}
    position = max(
        (row.position for row, _, _ in rows if row.customer_id == survivor_id), default=-1
    )
    moved, dropped = 0, []
    for row, key, shown in rows:
        if row.customer_id != merged_id:
            continue
        if key in kept:
            await session.delete(row)
            dropped.append(shown)
            continue
        kept.add(key)
        position += 1
        row.customer_id, row.position = survivor_id, position
        moved += 1
    return moved, dropped


def _address(c: Customer) -> tuple[str, ...]:
    return tuple(getattr(c, f) for f in ADDRESS)


def _apply_fills(survivor: Customer, merged: Customer, plan: MergePlan) -> None:
    for f in plan.filled:
        if f == "address":
            for a in ADDRESS:
                setattr(survivor, a, getattr(merged, a))
        elif f == "no_call":
            survivor.no_call = True
        elif f == "flags":
            survivor.flags = {**(merged.flags or {}), **(survivor.flags or {})}
        else:
            setattr(survivor, f, getattr(merged, f))
    if "kana" in plan.filled:
        survivor.kana_key = kana_key(survivor.kana)
    for f in plan.appended:
        mine, theirs = getattr(survivor, f).rstrip(), getattr(merged, f).strip()
        if f == "memo":
            theirs = f"[統合元 {merged.code}] {theirs}"
        setattr(survivor, f, f"{mine}\n{theirs}" if mine else theirs)
