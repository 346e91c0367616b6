"""Order pricing (O1, O4): line amounts, shipping and COD fees, consumption tax.

Prices are tax-exclusive integer yen. Consumption tax is 10% of the standard-rate lines plus
shipping and the COD fee, and 8% of the reduced-rate lines (food, 軽減税率), each rounded down,
as on a Japanese invoice with one tax line per rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TAX_RATES = {"standard": 10, "reduced": 8}


@dataclass(frozen=True)
class PriceLine:
    product_code: str
    product_name: str
    quantity: int
    unit_price: int
    tax_class: str = "standard"
    is_present: bool = False

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class Quote:
    lines: tuple[PriceLine, ...]
    subtotal: int
    discount: int
    shipping_fee: int
    cod_fee: int
    tax_standard: int
    tax_reduced: int
    total: int
    notes: tuple[str, ...] = field(default=())

    @property
    def tax(self) -> int:
        return self.tax_standard + self.tax_reduced


def quote(
    lines: list[PriceLine],
    *,
    shipping_fee: int,
    cod_fee: int = 0,
    discount: int = 0,
    notes: tuple[str, ...] = (),
) -> Quote:
    """Price an order. ``discount`` (tax-exclusive yen) comes off the standard-rate base first,
    then the reduced-rate base; it never makes a base negative."""
    if any(line.quantity <= 0 for line in lines):
        raise ValueError("数量は1以上で入力してください。")
    if any(line.unit_price < 0 for line in lines):
        raise ValueError("単価は0円以上で入力してください。")
    standard = sum(x.amount for x in lines if x.tax_class != "reduced")
    reduced = sum(x.amount for x in lines if x.tax_class == "reduced")
    subtotal = standard + reduced
    discount = max(0, min(discount, subtotal))
    off_standard = min(discount, standard)
    off_reduced = discount - off_standard
    base_standard = standard - off_standard + shipping_fee + cod_fee
    base_reduced = reduced - off_reduced
    tax_standard = base_standard * TAX_RATES["standard"] // 100
    tax_reduced = base_reduced * TAX_RATES["reduced"] // 100
    total = subtotal - discount + shipping_fee + cod_fee + tax_standard + tax_reduced
    return Quote(
        lines=tuple(lines),
        subtotal=subtotal,
        discount=discount,
        shipping_fee=shipping_fee,
        cod_fee=cod_fee,
        tax_standard=tax_standard,
        tax_reduced=tax_reduced,
        total=total,
        notes=notes,
    )
