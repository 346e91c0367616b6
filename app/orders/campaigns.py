"""Campaign rules (X7, R4, O3) as order entry applies them.

:func:`campaigns_on` loads the campaigns in force on a day (active, within their period);
:func:`evaluate` decides which apply to an order and what each does. Several rules may apply
at once: the shipping fee is waived once, discounts add up (the pricing caps them at the
商品金額), each present adds its own line.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.masters.models import Campaign, Product
from app.orders.models import VOID_STATUSES, Order


@dataclass(frozen=True)
class AppliedCampaign:
    """A campaign applied to an order: its name, what it did, how many yen it took off, and
    for a present the product given and the product that earned it."""

    campaign_id: int
    code: str
    name: str
    kind: str
    effect: str
    amount: int = 0
    present: Product | None = None
    present_quantity: int = 0
    trigger_product_id: int | None = None


@dataclass
class CampaignOutcome:
    applied: list[AppliedCampaign] = field(default_factory=list)
    discount: int = 0
    shipping_fee: int = 0

    @property
    def presents(self) -> list[AppliedCampaign]:
        return [a for a in self.applied if a.present is not None]


async def campaigns_on(session: AsyncSession, *, on: dt.date) -> list[Campaign]:
    """Active campaigns whose period contains ``on`` (open ends allowed), by code."""
    stmt = (
        select(Campaign)
        .where(
            Campaign.active.is_(True),
            or_(Campaign.starts_on.is_(None), Campaign.starts_on <= on),
            or_(Campaign.ends_on.is_(None), Campaign.ends_on >= on),
        )
        .order_by(Campaign.code)
    )
    return list((await session.scalars(stmt)).all())


async def is_new_customer(session: AsyncSession, *, customer_id: int) -> bool:
    """No previous order (a cancelled or returned one does not count)."""
    found = await session.scalar(
        select(Order.id)
        .where(Order.customer_id == customer_id, Order.status.not_in(VOID_STATUSES))
        .limit(1)
    )
    return found is None


async def present_products(session: AsyncSession, campaigns: list[Campaign]) -> dict[int, Product]:
    ids = {c.present_product_id for c in campaigns if c.present_product_id is not None}
    if not ids:
        return {}
    rows = await session.scalars(
        select(Product).where(Product.id.in_(ids), Product.active.is_(True))
    )
    return {p.id: p for p in rows}


def evaluate(
    campaigns: list[Campaign],
    *,
    product_ids: set[int],
    subtotal: int,
    shipping_fee: int,
    rank_id: int | None,
    new_customer: bool,
    presents: dict[int, Product],
) -> CampaignOutcome:
    """Which of ``campaigns`` (already in force) apply to an order with these products
    (``product_ids``, the lines typed and their set parts), this 商品金額 and this shipping fee,
    for a customer of ``rank_id``, new or not."""
    out = CampaignOutcome(shipping_fee=shipping_fee)
    for c in campaigns:
        if subtotal < c.min_subtotal:
            continue
        if c.kind == "free_shipping":
            if out.shipping_fee == 0:
                continue
            effect = "送料無料" + (f"（{c.min_subtotal:,}円以上）" if c.min_subtotal else "")
            out.applied.append(_applied(c, effect, out.shipping_fee))
            out.shipping_fee = 0
        elif c.kind in ("new_customer", "rank_discount"):
            if c.kind == "new_customer":
                if not new_customer:
                    continue
                wanted, rule = c.discount_amount, f"新規のお客様 {c.discount_amount:,}円引き"
            elif rank_id is None or c.rank_id != rank_id:
                continue
            elif c.discount_percent:
                wanted = subtotal * c.discount_percent // 100
                rule = f"ランク割引 {c.discount_percent}%引き"
            else:
                wanted, rule = c.discount_amount, f"ランク割引 {c.discount_amount:,}円引き"
            # Discounts together never pass the goods amount: one that finds less left takes
            # that, and the effect says how much it took when that is not what the rule says.
            amount = min(wanted, subtotal - out.discount)
            if amount <= 0:
                continue
            shown = c.kind == "rank_discount" and bool(c.discount_percent)
            effect = rule + (f"（{amount:,}円）" if shown or amount < wanted else "")
            out.applied.append(_applied(c, effect, amount))
            out.discount += amount
        elif c.kind == "present":
            present = presents.get(c.present_product_id or 0)
            if present is None or c.product_id not in product_ids or c.present_quantity < 1:
                continue
            out.applied.append(
                AppliedCampaign(
                    campaign_id=c.id,
                    code=c.code,
                    name=c.name,
                    kind=c.kind,
                    effect=f"同梱: {present.name} ×{c.present_quantity}",
                    present=present,
                    present_quantity=c.present_quantity,
                    trigger_product_id=c.product_id,
                )
            )
    return out


def _applied(c: Campaign, effect: str, amount: int) -> AppliedCampaign:
    return AppliedCampaign(
        campaign_id=c.id, code=c.code, name=c.name, kind=c.kind, effect=effect, amount=amount
    )
