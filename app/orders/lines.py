"""Order-line building blocks shared by order entry and the subscription daily run: the
payment methods and 定期 intervals, a draft's lines and rows, expanding typed products into their
stored lines (set parts, 同梱 companions) and the one-line product summary.

Nothing here imports the subscriptions feature, so ``app.subscriptions`` can build orders from
these pieces while ``app.orders.service`` keeps its own imports one way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.masters.models import Companion, Product, SetItem

PAYMENT_METHODS = {"cod": "代引", "postal": "郵便振替", "card": "クレジット", "bank": "銀行振込"}
# 定期 interval choices: key -> (label, unit, fixed n or None when the operator gives N)
INTERVALS: dict[str, tuple[str, str, int | None]] = {
    "m1": ("毎月", "month", 1),
    "m2": ("2ヶ月ごと", "month", 2),
    "m": ("Nヶ月ごと", "month", None),
    "w": ("N週ごと", "week", None),
}


@dataclass
class DraftLine:
    """One order line as it will be stored. Parts of a set and companions (同梱) carry no
    price and point at the line they came from."""

    position: int
    product_id: int
    code: str
    name: str
    quantity: int
    unit_price: int
    amount: int
    tax_class: str
    is_present: bool
    parent_position: int | None
    kind: str  # item / part / companion / present (a campaign's present)


@dataclass
class DraftRow:
    """A line the operator typed, with what it expands to."""

    index: int
    code: str
    quantity: str
    unit_price: str
    base: str
    name: str = ""
    line: DraftLine | None = None
    is_set: bool = False
    subscribable: bool = False
    children: list[DraftLine] = field(default_factory=list)


def product_summary(items: Sequence[tuple[str, int]]) -> str:
    """健康トニック 1個 ほか — the first product and its quantity, "ほか" when there are more."""
    if not items:
        return ""
    name, qty = items[0]
    return f"{name} {qty}個" + (" ほか" if len(items) > 1 else "")


async def expand_lines(
    session: AsyncSession, items: list[tuple[DraftRow, Product, int, int]]
) -> list[DraftLine]:
    """The lines typed rows become: item lines with the parts of set products under them and
    their companions (同梱)."""
    if not items:
        return []
    ids = {p.id for _, p, _, _ in items}
    parts: dict[int, list[SetItem]] = {}
    for si in await session.scalars(
        select(SetItem).where(SetItem.set_product_id.in_(ids)).order_by(SetItem.id)
    ):
        parts.setdefault(si.set_product_id, []).append(si)
    part_ids = {si.component_id for group in parts.values() for si in group}
    companions: dict[int, list[Companion]] = {}
    for c in await session.scalars(
        select(Companion).where(Companion.product_id.in_(ids | part_ids)).order_by(Companion.id)
    ):
        companions.setdefault(c.product_id, []).append(c)
    wanted = part_ids | {c.companion_id for group in companions.values() for c in group}
    products: dict[int, Product] = {p.id: p for _, p, _, _ in items}
    missing = wanted - products.keys()
    if missing:
        for p in await session.scalars(select(Product).where(Product.id.in_(missing))):
            products[p.id] = p

    lines: list[DraftLine] = []

    def add(product: Product, qty: int, price: int, kind: str, parent: int | None) -> DraftLine:
        line = DraftLine(
            position=len(lines),
            product_id=product.id,
            code=product.code,
            name=product.name,
            quantity=qty,
            unit_price=price,
            amount=qty * price,
            tax_class=product.tax_class,
            is_present=product.is_present,
            parent_position=parent,
            kind=kind,
        )
        lines.append(line)
        return line

    for row, product, qty, price in items:
        item = add(product, qty, price, "item", None)
        row.line = item
        sources = [item]
        for si in parts.get(product.id, []):
            part = add(products[si.component_id], si.quantity * qty, 0, "part", item.position)
            row.children.append(part)
            sources.append(part)
        row.is_set = len(sources) > 1
        for source in sources:
            for c in companions.get(source.product_id, []):
                extra = add(
                    products[c.companion_id],
                    c.quantity * source.quantity,
                    0,
                    "companion",
                    source.position,
                )
                row.children.append(extra)
    return lines
