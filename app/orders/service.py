"""Order entry in the monitor (O1–O4): a priced and dated draft of what the operator typed,
and its idempotent submission.

The operator's input (:class:`DraftInput`) is kept as typed (strings), so that a form can be
re-rendered exactly; :func:`build_draft` resolves products, expands set products into their
parts, adds companions (同梱), prices the order with :func:`app.orders.pricing.quote`, dates it
with :mod:`app.orders.dates` and collects Japanese messages per field. :func:`submit_order`
builds the draft again on the server and writes the order only when it is valid.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import String, case, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app import dates
from app.audit.service import record
from app.config import OrdersConfig
from app.customers.keys import kana_key, name_key
from app.customers.models import Customer, ShipTo
from app.dates import add_months
from app.inputs import normalise
from app.masters.models import (
    Ad,
    Carrier,
    OrderCampaign,
    Present,
    Product,
    ShipOrigin,
    ShippingRate,
)
from app.orders.campaigns import (
    AppliedCampaign,
    CampaignOutcome,
    campaigns_on,
    evaluate,
    is_new_customer,
    present_products,
)
from app.orders.dates import delivery_date, is_shipping_day, ship_date
from app.orders.lines import (
    INTERVALS,
    PAYMENT_METHODS,
    DraftLine,
    DraftRow,
    expand_lines,
    product_summary,
)
from app.orders.models import Order, OrderLine
from app.orders.pricing import PriceLine, Quote, quote
from app.responses.models import Action
from app.subscriptions.models import Subscription, SubscriptionItem
from app.subscriptions.terms import Terms, subscription_terms

SLIP_TYPES = {"normal": "通常", "subscription": "定期"}
TIME_SLOTS = {
    "": "指定なし",
    "0812": "午前中",
    "1416": "14-16時",
    "1618": "16-18時",
    "1820": "18-20時",
    "1921": "19-21時",
}
CATEGORIES = ("通常", "返品交換", "サンプル")
ALLOCATIONS = ("電話", "FAX", "ハガキ", "Web")
MAX_QUANTITY = 999
MAX_UNIT_PRICE = 9_999_999
MAX_NOTE = 1000
SUGGESTION_LIMIT = 8
CODE_LIKE = re.compile(r"[0-9A-Za-z\-]+")

# 受付日 may be back-dated this far (a postcard order typed in a few days late), no further.
MAX_BACKDATE_DAYS = 31


class OrderInputError(ValueError):
    """Bad order input: ``errors`` maps each field (``line-{i}-code`` for a line) to its
    Japanese message; ``draft`` is the draft to re-render, when one could be built."""

    def __init__(self, errors: dict[str, str], draft: Draft | None = None) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors
        self.draft = draft


# --- input ------------------------------------------------------------------------------------


@dataclass
class LineInput:
    """One line as typed: 商品コード (or a name), 個数, 単価.

    ``base`` is ``"code:price"`` of the product price the unit price was last filled from: a
    unit price equal to it (or empty) follows the product master; anything else is the
    operator's own price for this product.
    """

    code: str = ""
    quantity: str = "1"
    unit_price: str = ""
    base: str = ""


@dataclass
class DraftInput:
    """Everything the order form carries, as typed. Dates accept 2025/04/07, 2025-04-07,
    20250407, 4/7 and 0407."""

    idempotency_key: str = ""
    lines: list[LineInput] = field(default_factory=list)
    slip_type: str = "normal"
    interval: str = "m1"
    interval_n: str = ""
    day_of_month: str = ""
    carrier: str = ""  # Carrier.code
    origin: str = ""  # ShipOrigin.code ("" = the first active one)
    ship_to: str = ""  # "" = the customer's own address, else a ShipTo id
    ad: str = ""  # Ad id or ""
    category: str = CATEGORIES[0]
    allocation: str = ALLOCATIONS[0]
    received_on: str = ""
    ship_on: str = ""
    ship_auto: str = ""  # the 出荷予定日 computed last time: equal input = not edited
    deliver_on: str = ""
    deliver_auto: str = ""
    time_slot: str = ""
    payment: str = ""
    note: str = ""


# --- draft ------------------------------------------------------------------------------------


@dataclass
class Destination:
    ship_to_id: int | None
    label: str
    name: str
    postcode: str
    prefecture: str
    address: str


@dataclass
class SubscriptionPlan:
    interval_unit: str
    interval_n: int
    day_of_month: int
    start_month: dt.date
    due_on: dt.date  # this order's お届け予定日
    next_date: dt.date

    @property
    def label(self) -> str:
        if self.interval_unit == "week":
            return f"{self.interval_n}週ごと"
        every = "毎月" if self.interval_n == 1 else f"{self.interval_n}ヶ月ごと"
        return f"{every} {self.day_of_month}日"


@dataclass
class Choices:
    carriers: list[tuple[str, str]]  # code, name
    ship_tos: list[tuple[str, str]]  # "" or id, label
    ads: list[tuple[str, str]]  # id, "code name"
    origins: list[tuple[str, str]] = field(default_factory=list)  # code, "code name"


@dataclass
class Draft:
    """An order being entered: resolved lines, fees, dates, totals and messages."""

    customer_id: int
    data: DraftInput
    rows: list[DraftRow]
    lines: list[DraftLine]
    choices: Choices
    destination: Destination | None = None
    carrier_id: int | None = None
    carrier_name: str = ""
    origin_region: str = ""
    dest_region: str = ""
    received_on: dt.date | None = None
    ship_on: dt.date | None = None
    deliver_on: dt.date | None = None
    lead_days: int | None = None
    quote: Quote | None = None
    ad_label: str = ""
    subscription: SubscriptionPlan | None = None
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    # the campaigns applied (in force on the 受付日), each with its effect
    campaigns: list[AppliedCampaign] = field(default_factory=list)
    # 定期: what to read to the customer (later deliveries' price, dates, how to cancel)
    terms: Terms | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def items(self) -> list[DraftLine]:
        return [x for x in self.lines if x.kind == "item"]

    @property
    def summary(self) -> str:
        """The products in a few words, as the AC履歴 shows them."""
        return product_summary([(x.name, x.quantity) for x in self.items])


@dataclass
class SubmitResult:
    order: Order
    created: bool  # False: the idempotency key had made this order already
    campaigns: list[OrderCampaign] = field(default_factory=list)  # as applied to the order
    carrier_name: str | None = None  # known when the order was made now (else look it up)


# --- parsing helpers ----------------------------------------------------------------------------


def _int(value: str) -> int | None:
    text = normalise(value).replace(",", "")
    if not re.fullmatch(r"-?\d{1,9}", text):
        return None
    return int(text)


def parse_date(value: str, *, today: dt.date) -> dt.date | None:
    """A date as an operator types it: 2025/04/07, 2025-4-7, 20250407, 4/7 or 0407 (the
    year of ``today``, or the next year when that is more than half a year back); None when
    blank or no date (see :func:`app.dates.parse_date`)."""
    try:
        return dates.parse_date(value, today=today)
    except ValueError:
        return None


def format_date(day: dt.date | None) -> str:
    return "" if day is None else f"{day:%Y/%m/%d}"


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _on_sale(on: dt.date) -> Any:
    return (
        Product.active.is_(True),
        or_(Product.sale_from.is_(None), Product.sale_from <= on),
        or_(Product.sale_to.is_(None), Product.sale_to >= on),
    )


# --- look-ups -----------------------------------------------------------------------------------


async def product_suggestions(
    session: AsyncSession, *, q: str, on: dt.date, limit: int = SUGGESTION_LIMIT
) -> list[Product]:
    """Products on sale on ``on`` matching what was typed: a code prefix, or a name or kana
    containing it (hiragana, katakana, half-width and spaces do not matter). Code matches first.
    """
    text = normalise(q)
    if not text:
        return []
    conds = [Product.code.startswith(text, autoescape=True)]
    name = name_key(text)
    kana = kana_key(text)
    plain_name = func.replace(Product.name, " ", "", type_=String)
    plain_kana = func.replace(Product.kana, " ", "", type_=String)
    if name:
        conds.append(plain_name.like(f"%{_escape_like(name)}%", escape="\\"))
    if kana:
        conds.append(plain_kana.like(f"%{_escape_like(kana)}%", escape="\\"))
    stmt = (
        select(Product)
        .where(*_on_sale(on), or_(*conds))
        .order_by(
            case((Product.code.startswith(text, autoescape=True), 0), else_=1),
            Product.code,
        )
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def new_draft_input(
    session: AsyncSession, *, customer_id: int, orders: OrdersConfig, today: dt.date
) -> DraftInput:
    """An empty order for this customer with the defaults filled in (carrier, payment, the
    customer's ad, today's 受付日) and a fresh idempotency key."""
    customer = await session.get(Customer, customer_id)
    codes = list(
        await session.scalars(
            select(Carrier.code).where(Carrier.active.is_(True)).order_by(Carrier.id)
        )
    )
    return DraftInput(
        idempotency_key=uuid.uuid4().hex,
        carrier=orders.default_carrier
        if orders.default_carrier in codes or not codes
        else codes[0],
        payment=orders.default_payment,
        ad=str(customer.ad_id) if customer is not None and customer.ad_id else "",
        received_on=format_date(today),
    )


async def draft_from_order(
    session: AsyncSession,
    *,
    customer_id: int,
    order_id: int,
    orders: OrdersConfig,
    today: dt.date,
) -> DraftInput | None:
    """再注文 (O2): a new order with the same products and quantities as a past order of this
    customer (current prices, today's dates, the same carrier, ship-to and payment). Parts of
    sets, companions and presents are left out: they follow from the products again.
    None when the order is not this customer's."""
    order = await session.get(Order, order_id)
    if order is None or order.customer_id != customer_id:
        return None
    data = await new_draft_input(session, customer_id=customer_id, orders=orders, today=today)
    lines = await session.scalars(
        select(OrderLine)
        .where(
            OrderLine.order_id == order.id,
            OrderLine.parent_position.is_(None),
            OrderLine.is_present.is_(False),
        )
        .order_by(OrderLine.position)
    )
    data.lines = [LineInput(code=x.product_code, quantity=str(x.quantity)) for x in lines]
    await _same_delivery(
        session,
        data,
        customer_id=customer_id,
        carrier_id=order.carrier_id,
        ship_to_id=order.ship_to_id,
        payment=order.payment_method,
    )
    return data


async def draft_from_subscription(
    session: AsyncSession,
    *,
    customer_id: int,
    subscription_id: int,
    orders: OrdersConfig,
    today: dt.date,
) -> DraftInput | None:
    """A normal order with a subscription's items (its unit prices where it has its own), its
    carrier, ship-to and payment. None when the subscription is not this customer's."""
    sub = await session.get(Subscription, subscription_id)
    if sub is None or sub.customer_id != customer_id:
        return None
    data = await new_draft_input(session, customer_id=customer_id, orders=orders, today=today)
    rows = await session.execute(
        select(SubscriptionItem, Product)
        .join(Product, Product.id == SubscriptionItem.product_id)
        .where(SubscriptionItem.subscription_id == sub.id)
        .order_by(SubscriptionItem.id)
    )
    for item, product in rows:
        line = LineInput(code=product.code, quantity=str(item.quantity))
        if item.unit_price > 0 and item.unit_price != product.price:
            line.unit_price = str(item.unit_price)
            line.base = f"{product.code}:{product.price}"
        data.lines.append(line)
    await _same_delivery(
        session,
        data,
        customer_id=customer_id,
        carrier_id=sub.carrier_id,
        ship_to_id=sub.ship_to_id,
        payment=sub.payment_method,
    )
    return data


async def _same_delivery(
    session: AsyncSession,
    data: DraftInput,
    *,
    customer_id: int,
    carrier_id: int | None,
    ship_to_id: int | None,
    payment: str,
) -> None:
    if carrier_id is not None:
        carrier = await session.get(Carrier, carrier_id)
        if carrier is not None and carrier.active:
            data.carrier = carrier.code
    if ship_to_id is not None:
        ship_to = await session.get(ShipTo, ship_to_id)
        if ship_to is not None and ship_to.active and ship_to.customer_id == customer_id:
            data.ship_to = str(ship_to.id)
    if payment in PAYMENT_METHODS:
        data.payment = payment


# --- the draft ----------------------------------------------------------------------------------


async def _resolve_products(
    session: AsyncSession, texts: list[str], *, on: dt.date
) -> tuple[dict[str, Product], dict[str, str | list[Product]]]:
    """Products by exact code, and for other texts the unique match (or the candidates)."""
    codes = {t for t in texts if t}
    by_code: dict[str, Product] = {}
    if codes:
        found = await session.scalars(select(Product).where(Product.code.in_(codes)))
        by_code = {p.code: p for p in found}
    by_text: dict[str, str | list[Product]] = {}
    for text in codes - by_code.keys():
        if CODE_LIKE.fullmatch(text):  # a code must be typed in full, never guessed
            by_text[text] = []
            continue
        matches = await product_suggestions(session, q=text, on=on)
        exact = [p for p in matches if name_key(p.name) == name_key(text)]
        if len(matches) == 1 or len(exact) == 1:
            chosen = matches[0] if len(matches) == 1 else exact[0]
            by_code[chosen.code] = chosen
            by_text[text] = chosen.code
        else:
            by_text[text] = matches
    return by_code, by_text


def _availability(product: Product, on: dt.date) -> str:
    if not product.active:
        return "販売を終了した商品です。"
    if (product.sale_from and product.sale_from > on) or (product.sale_to and product.sale_to < on):
        period = f"{format_date(product.sale_from)}〜{format_date(product.sale_to)}"
        return f"販売期間外の商品です（{period}）。"
    return ""


async def build_draft(
    session: AsyncSession,
    *,
    customer_id: int,
    data: DraftInput,
    orders: OrdersConfig,
    now: dt.datetime,
) -> Draft:
    """Resolve, expand, price and date what the operator typed; never writes.

    ``now`` is the local (JST) time of entry: the 受付日 defaults to its date and the cut-off
    applies when the 受付日 is today. Lines with an empty code are ignored. Messages go to
    ``Draft.errors`` (blocking) and ``Draft.notes`` (advice such as a 出荷予定日 on a closed
    day). Raises LookupError when there is no such customer.
    """
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise LookupError(customer_id)
    today = now.date()
    errors: dict[str, str] = {}
    notes: dict[str, str] = {}
    out = replace(data, lines=[])
    masters = await _masters(session, customer)
    if customer.merged_into_id is not None:
        errors["form"] = "この顧客は統合済みです。統合先の顧客で受注してください。"

    # 受付日
    received_on = parse_date(data.received_on, today=today) if data.received_on.strip() else today
    if received_on is None:
        errors["received_on"] = "受付日を正しく入力してください（例 2025/04/07）。"
    elif received_on > today:
        errors["received_on"] = "受付日に未来の日付は指定できません。"
    elif received_on < today - dt.timedelta(days=MAX_BACKDATE_DAYS):
        errors["received_on"] = f"受付日は{MAX_BACKDATE_DAYS}日前までです。日付を確認してください。"
    out.received_on = format_date(received_on) if received_on else data.received_on

    # lines
    typed = [
        replace(x, code=normalise(x.code), quantity=normalise(x.quantity))
        for x in data.lines
        if normalise(x.code)
    ]
    on = received_on or today
    by_code, by_text = await _resolve_products(session, [x.code for x in typed], on=on)
    rows: list[DraftRow] = []
    items: list[tuple[DraftRow, Product, int, int]] = []
    for index, line in enumerate(typed):
        row, item = _row(
            index,
            line,
            by_code=by_code,
            by_text=by_text,
            on=on,
            subscription=data.slip_type == "subscription",
            errors=errors,
        )
        rows.append(row)
        if item is not None:
            items.append(item)
    out.lines = [LineInput(r.code, r.quantity, r.unit_price, r.base) for r in rows]
    lines = await expand_lines(session, items)
    if not rows:
        errors["lines"] = "商品を1つ以上入力してください。"

    # carrier, destination, shipping rate
    carrier = next((c for c in masters.carriers if c.code == data.carrier), None)
    if carrier is None:
        errors["carrier"] = "配送会社を選んでください。"
    destination = _destination(customer, masters.ship_tos, data.ship_to, errors)
    rate: ShippingRate | None = None
    if destination is not None and not destination.prefecture:
        errors["ship_to"] = "発送先の都道府県が未設定です。住所を登録してください。"
    elif destination is not None and carrier is not None:
        rate = await session.scalar(
            select(ShippingRate).where(
                ShippingRate.carrier_id == carrier.id,
                ShippingRate.prefecture == destination.prefecture,
            )
        )
        if rate is None:
            errors["ship_to"] = (
                f"送料マスタに{destination.prefecture}（{carrier.name}）の送料がありません。"
            )

    ship_on, deliver_on = _dates(
        data,
        out,
        received_on=received_on,
        now=now,
        orders=orders,
        lead_days=rate.lead_days if rate is not None else None,
        errors=errors,
        notes=notes,
    )
    ad_label = _check_choices(data, masters.ads, errors)
    origin_region = orders.origin_region
    if masters.origins:
        origin = next((o for o in masters.origins if o.code == data.origin), None)
        if origin is None and not data.origin:
            origin = masters.origins[0]
        if origin is None:
            errors["origin"] = "発送元地区を選んでください。"
        else:
            out.origin = origin.code
            origin_region = origin.name
    plan = _plan(data, out, deliver_on, errors) if data.slip_type == "subscription" else None

    # price
    price_lines = [
        PriceLine(x.code, x.name, x.quantity, x.unit_price, x.tax_class, x.is_present)
        for x in lines
        if x.kind == "item"
    ]
    fee = rate.fee if rate is not None else 0
    cod_fee = rate.cod_fee if rate is not None and data.payment == "cod" else 0
    priced: Quote | None = None
    outcome = CampaignOutcome(shipping_fee=fee)
    terms: Terms | None = None
    if price_lines:
        outcome = await _campaigns(
            session,
            customer,
            on=on,
            lines=lines,
            subtotal=sum(x.amount for x in price_lines),
            shipping_fee=fee,
        )
        _add_presents(lines, rows, outcome)
        priced = quote(
            price_lines,
            shipping_fee=outcome.shipping_fee,
            cod_fee=cod_fee,
            discount=outcome.discount,
        )
        if plan is not None:
            # later deliveries: the items at their prices, shipping, COD fee and tax, without
            # this order's campaigns
            later = quote(
                [x for x in price_lines if not x.is_present], shipping_fee=fee, cod_fee=cod_fee
            )
            terms = subscription_terms(
                interval_unit=plan.interval_unit,
                interval_n=plan.interval_n,
                day_of_month=plan.day_of_month,
                start_month=plan.due_on if plan.interval_unit == "week" else plan.start_month,
                on_or_after=plan.next_date,
                later_total=later.total,
            )

    return Draft(
        customer_id=customer_id,
        data=out,
        rows=rows,
        lines=lines,
        choices=masters.choices,
        destination=destination,
        carrier_id=carrier.id if carrier else None,
        carrier_name=carrier.name if carrier else "",
        origin_region=origin_region,
        dest_region=rate.region if rate else "",
        received_on=received_on,
        ship_on=ship_on,
        deliver_on=deliver_on,
        lead_days=rate.lead_days if rate else None,
        quote=priced,
        ad_label=ad_label,
        subscription=plan,
        errors=errors,
        notes=notes,
        campaigns=outcome.applied,
        terms=terms,
    )


async def _campaigns(
    session: AsyncSession,
    customer: Customer,
    *,
    on: dt.date,
    lines: list[DraftLine],
    subtotal: int,
    shipping_fee: int,
) -> CampaignOutcome:
    """The campaigns in force on the 受付日 that apply to these lines (O3, R4)."""
    found = await campaigns_on(session, on=on)
    if not found:
        return CampaignOutcome(shipping_fee=shipping_fee)
    product_ids = {x.product_id for x in lines if x.kind in ("item", "part")}
    # Only what a rule in reach needs is read: whether the customer is new, the presents
    # of the products on this order.
    new = any(
        c.kind == "new_customer" and subtotal >= c.min_subtotal for c in found
    ) and await is_new_customer(session, customer_id=customer.id)
    earned = [c for c in found if c.kind == "present" and c.product_id in product_ids]
    return evaluate(
        found,
        product_ids=product_ids,
        subtotal=subtotal,
        shipping_fee=shipping_fee,
        rank_id=customer.rank_id,
        new_customer=new,
        presents=await present_products(session, earned),
    )


def _add_presents(lines: list[DraftLine], rows: list[DraftRow], outcome: CampaignOutcome) -> None:
    """A 0-yen line for each present, under the line of the product that earned it."""
    for applied in outcome.presents:
        assert applied.present is not None
        source = next(
            x
            for x in lines
            if x.product_id == applied.trigger_product_id and x.kind in ("item", "part")
        )
        present = DraftLine(
            position=len(lines),
            product_id=applied.present.id,
            code=applied.present.code,
            name=applied.present.name,
            quantity=applied.present_quantity,
            unit_price=0,
            amount=0,
            tax_class=applied.present.tax_class,
            is_present=True,
            parent_position=source.position,
            kind="present",
        )
        lines.append(present)
        for row in rows:
            if row.line is source or any(c is source for c in row.children):
                row.children.append(present)
                break


@dataclass
class _Masters:
    carriers: list[Carrier]
    ship_tos: list[ShipTo]
    ads: list[Ad]
    choices: Choices
    origins: list[ShipOrigin] = field(default_factory=list)


async def _masters(session: AsyncSession, customer: Customer) -> _Masters:
    """Active carriers, the customer's active ship-tos and the ads to choose from."""
    carriers = list(
        await session.scalars(select(Carrier).where(Carrier.active.is_(True)).order_by(Carrier.id))
    )
    ship_tos = list(
        await session.scalars(
            select(ShipTo)
            .where(ShipTo.customer_id == customer.id, ShipTo.active.is_(True))
            .order_by(ShipTo.id)
        )
    )
    ads = list(
        await session.scalars(
            select(Ad).where(or_(Ad.active.is_(True), Ad.id == customer.ad_id)).order_by(Ad.code)
        )
    )
    origins = list(
        await session.scalars(
            select(ShipOrigin)
            .where(ShipOrigin.active.is_(True))
            .order_by(ShipOrigin.sort_order, ShipOrigin.code)
        )
    )
    choices = Choices(
        origins=[(o.code, f"{o.code} {o.name}") for o in origins],
        carriers=[(c.code, c.name) for c in carriers],
        ship_tos=[("", f"ご本人（{customer.prefecture}{customer.city}）")]
        + [
            (str(s.id), f"{s.label or '送付先'} {s.name}（{s.prefecture}{s.city}）")
            for s in ship_tos
        ],
        ads=[(str(a.id), f"{a.code} {a.name}") for a in ads],
    )
    return _Masters(carriers=carriers, ship_tos=ship_tos, ads=ads, choices=choices, origins=origins)


def _row(
    index: int,
    line: LineInput,
    *,
    by_code: dict[str, Product],
    by_text: dict[str, str | list[Product]],
    on: dt.date,
    subscription: bool,
    errors: dict[str, str],
) -> tuple[DraftRow, tuple[DraftRow, Product, int, int] | None]:
    """One typed line checked: the row to show, and (row, product, quantity, unit price) when
    it can be priced."""
    key = f"line-{index}"
    resolved = by_text.get(line.code)
    code = resolved if isinstance(resolved, str) else line.code
    product = by_code.get(code)
    row = DraftRow(
        index=index, code=code, quantity=line.quantity, unit_price=line.unit_price, base=line.base
    )
    if product is None:
        if isinstance(resolved, list) and resolved:
            errors[f"{key}-code"] = "該当する商品が複数あります。候補から選んでください。"
        else:
            errors[f"{key}-code"] = "未登録の商品コードです。"
        return row, None
    row.name = product.name
    row.subscribable = product.subscribable
    problem = _availability(product, on)
    if problem:
        errors[f"{key}-code"] = problem
    elif subscription and not product.subscribable and not product.is_present:
        errors[f"{key}-code"] = "定期は定期可の商品のみです。"
    qty = _int(line.quantity)
    if qty is None or qty < 1:
        errors[f"{key}-qty"] = "個数は1以上で入力してください。"
        qty = None
    elif qty > MAX_QUANTITY:
        errors[f"{key}-qty"] = f"個数は{MAX_QUANTITY}以下で入力してください。"
        qty = None
    # The unit price follows the product unless the operator changed it for this product.
    base_code, _, base_price = line.base.partition(":")
    raw_price = normalise(line.unit_price).replace(",", "")
    price: int | None = product.price
    if raw_price and base_code == product.code and raw_price != base_price:
        price = _int(raw_price)
        if price is None or price < 0:
            errors[f"{key}-price"] = "単価は0円以上で入力してください。"
            price = None
        elif price > MAX_UNIT_PRICE:
            errors[f"{key}-price"] = "単価が大きすぎます。"
            price = None
    row.unit_price = str(price) if price is not None else line.unit_price
    row.base = f"{product.code}:{product.price}"
    if qty is None or price is None:
        return row, None
    row.quantity = str(qty)
    return row, (row, product, qty, price)


def _destination(
    customer: Customer, ship_tos: list[ShipTo], ship_to: str, errors: dict[str, str]
) -> Destination | None:
    """発送先: the customer's own address, or one of their active ship-tos."""
    if not ship_to:
        return Destination(
            ship_to_id=None,
            label="ご本人",
            name=customer.name,
            postcode=customer.postcode,
            prefecture=customer.prefecture,
            address=f"{customer.prefecture}{customer.city}{customer.street} {customer.building}",
        )
    found = next((s for s in ship_tos if str(s.id) == ship_to), None)
    if found is None:
        errors["ship_to"] = "発送先を選んでください。"
        return None
    return Destination(
        ship_to_id=found.id,
        label=found.label or "送付先",
        name=found.name,
        postcode=found.postcode,
        prefecture=found.prefecture,
        address=f"{found.prefecture}{found.city}{found.street} {found.building}",
    )


def _dates(
    data: DraftInput,
    out: DraftInput,
    *,
    received_on: dt.date | None,
    now: dt.datetime,
    orders: OrdersConfig,
    lead_days: int | None,
    errors: dict[str, str],
    notes: dict[str, str],
) -> tuple[dt.date | None, dt.date | None]:
    """出荷予定日 and お届け予定日: computed, unless the operator changed them."""
    today = now.date()
    ship_on: dt.date | None = None
    deliver_on: dt.date | None = None
    if received_on is not None:
        # A back-dated order (a postcard typed in late) still ships from today on.
        auto_ship = ship_date(
            now, cutoff=orders.cutoff_time, closed_weekdays=orders.closed_weekdays
        )
        out.ship_auto = auto_ship.isoformat()
        ship_on = _edited_or_auto(data.ship_on, data.ship_auto, auto_ship, today=today)
        if ship_on is None:
            errors["ship_on"] = "出荷予定日を正しく入力してください（例 2025/04/07）。"
        elif ship_on < received_on and "received_on" not in errors:
            errors["ship_on"] = "出荷予定日は受付日以降の日付を入力してください。"
        elif ship_on < today:
            errors["ship_on"] = "出荷予定日に過ぎた日付は指定できません。"
        elif far := dates.window_error(
            ship_on, around=received_on, label="出荷予定日", base="受付日"
        ):
            errors["ship_on"] = far
        elif not is_shipping_day(ship_on, closed_weekdays=orders.closed_weekdays):
            notes["ship_on"] = "倉庫の休業日です。"
        out.ship_on = format_date(ship_on) if ship_on else data.ship_on
    if ship_on is not None and lead_days is not None:
        auto_deliver = delivery_date(ship_on, lead_days)
        out.deliver_auto = auto_deliver.isoformat()
        deliver_on = _edited_or_auto(data.deliver_on, data.deliver_auto, auto_deliver, today=today)
        if deliver_on is None:
            errors["deliver_on"] = "お届け予定日を正しく入力してください（例 2025/04/07）。"
        elif deliver_on < ship_on:
            errors["deliver_on"] = "お届け予定日は出荷予定日以降の日付を入力してください。"
        elif far := dates.window_error(
            deliver_on, around=received_on or today, label="お届け予定日", base="受付日"
        ):
            errors["deliver_on"] = far
        elif deliver_on < auto_deliver:
            notes["deliver_on"] = f"通常のお届けは{format_date(auto_deliver)}以降です。"
        out.deliver_on = format_date(deliver_on) if deliver_on else data.deliver_on
    elif data.deliver_on.strip():
        deliver_on = parse_date(data.deliver_on, today=today)
        if deliver_on is None:
            errors["deliver_on"] = "お届け予定日を正しく入力してください（例 2025/04/07）。"
        elif far := dates.window_error(
            deliver_on, around=received_on or today, label="お届け予定日", base="受付日"
        ):
            errors["deliver_on"] = far
    return ship_on, deliver_on


def _check_choices(data: DraftInput, ads: list[Ad], errors: dict[str, str]) -> str:
    """Check the fields chosen from fixed lists; returns the ad's label."""
    if data.slip_type not in SLIP_TYPES:
        errors["slip_type"] = "伝票区分を選んでください。"
    if data.payment not in PAYMENT_METHODS:
        errors["payment"] = "支払方法を選んでください。"
    if data.category not in CATEGORIES:
        errors["category"] = "区分を選んでください。"
    if data.allocation not in ALLOCATIONS:
        errors["allocation"] = "振分区分を選んでください。"
    if data.time_slot not in TIME_SLOTS:
        errors["time_slot"] = "お届け時間帯を選んでください。"
    if len(data.note) > MAX_NOTE:
        errors["note"] = f"備考は{MAX_NOTE}文字以内で入力してください。"
    if not data.ad:
        return ""
    ad = next((a for a in ads if str(a.id) == data.ad), None)
    if ad is None:
        errors["ad"] = "広告を選んでください。"
        return ""
    return f"{ad.code} {ad.name}"


def _edited_or_auto(raw: str, auto_raw: str, auto: dt.date, *, today: dt.date) -> dt.date | None:
    """The operator's date when they changed it, else the computed one."""
    if not raw.strip():
        return auto
    typed = parse_date(raw, today=today)
    previous = parse_date(auto_raw, today=today) if auto_raw.strip() else None
    if typed is not None and typed == previous:
        return auto
    return typed


def _plan(
    data: DraftInput, out: DraftInput, deliver_on: dt.date | None, errors: dict[str, str]
) -> SubscriptionPlan | None:
    label_unit = INTERVALS.get(data.interval)
    if label_unit is None:
        errors["interval"] = "定期の間隔を選んでください。"
        return None
    _label, unit, fixed = label_unit
    n = fixed
    if n is None:
        n = _int(data.interval_n)
        limit = 12 if unit == "month" else 26
        if n is None or not 1 <= n <= limit:
            errors["interval_n"] = f"間隔は1〜{limit}で入力してください。"
            return None
        out.interval_n = str(n)
    if deliver_on is None:
        return None
    dom = _int(data.day_of_month) if data.day_of_month.strip() else min(deliver_on.day, 28)
    if unit == "month" and (dom is None or not 1 <= dom <= 28):
        errors["day_of_month"] = "お届け日は1〜28日で入力してください。"
        return None
    dom = dom or min(deliver_on.day, 28)
    out.day_of_month = str(dom)
    if unit == "week":
        next_date = deliver_on + dt.timedelta(weeks=n)
    else:
        next_date = add_months(deliver_on, n, dom)
    return SubscriptionPlan(
        interval_unit=unit,
        interval_n=n,
        day_of_month=dom,
        start_month=deliver_on.replace(day=1),
        due_on=deliver_on,
        next_date=next_date,
    )


# --- submit -------------------------------------------------------------------------------------


async def _order_by_key(session: AsyncSession, key: str) -> Order | None:
    return await session.scalar(select(Order).where(Order.idempotency_key == key))


async def submit_order(
    session: AsyncSession,
    *,
    customer_id: int,
    data: DraftInput,
    staff_id: int | None,
    call_id: int | None,
    orders: OrdersConfig,
    now: dt.datetime,
) -> SubmitResult:
    """Register the order: re-validated and re-priced here, never trusting the form's totals.

    Idempotent: the form's ``idempotency_key`` makes one order however often it is sent (a
    double click, a retried request, two requests at once); a repeat returns that order with
    ``created=False``. The insert is ``INSERT … ON CONFLICT (idempotency_key) DO NOTHING`` on
    both backends, so a concurrent duplicate waits for the first and then finds its order,
    without an error that would spoil the transaction. Besides the order and its lines it
    records a 定期 (:class:`Subscription`) for 伝票区分 定期, an :class:`Action` of kind
    ``order`` (with the call the order was taken on) and an audit entry. Raises
    :class:`OrderInputError` on bad input, having written nothing.
    """
    key = data.idempotency_key.strip()
    if not key or len(key) > 64:
        raise OrderInputError({"form": "受付キーがありません。受注入力を開き直してください。"})
    existing = await _order_by_key(session, key)
    if existing is not None:
        return await _replayed(session, existing, customer_id)
    draft = await build_draft(session, customer_id=customer_id, data=data, orders=orders, now=now)
    if draft.errors:
        raise OrderInputError(draft.errors, draft)
    assert draft.quote is not None and draft.received_on is not None
    q = draft.quote
    values: dict[str, Any] = {
        "number": f"tmp-{uuid.uuid4().hex[:16]}",
        "customer_id": customer_id,
        "ship_to_id": draft.destination.ship_to_id if draft.destination else None,
        "ship_name": draft.destination.name[:100] if draft.destination else "",
        "ship_postcode": draft.destination.postcode[:8] if draft.destination else "",
        "ship_prefecture": draft.destination.prefecture[:8] if draft.destination else "",
        "ship_address": draft.destination.address.strip()[:400] if draft.destination else "",
        "slip_type": data.slip_type,
        "carrier_id": draft.carrier_id,
        "origin_region": draft.origin_region[:16],
        "dest_region": draft.dest_region[:16],
        "ad_id": int(data.ad) if data.ad else None,
        "category": data.category,
        "allocation": data.allocation,
        "received_on": draft.received_on,
        "ship_on": draft.ship_on,
        "deliver_on": draft.deliver_on,
        "time_slot": data.time_slot,
        "payment_method": data.payment,
        "payment_status": "unpaid",
        "subtotal": q.subtotal,
        "discount": q.discount,
        "shipping_fee": q.shipping_fee,
        "cod_fee": q.cod_fee,
        "tax": q.tax,
        "total": q.total,
        "status": "confirmed",
        "note": data.note.strip(),
        "staff_id": staff_id,
        "call_id": call_id,
        "idempotency_key": key,
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(Order)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Order)
    )
    order = (await session.scalars(stmt)).one_or_none()
    if order is None:  # the same key won a moment ago, in another request
        existing = await _order_by_key(session, key)
        assert existing is not None
        return await _replayed(session, existing, customer_id)
    order_id = order.id
    order.number = f"{draft.received_on:%Y%m%d}-{order_id:07d}"
    lines: list[OrderLine] = []
    for line in draft.lines:
        lines.append(
            OrderLine(
                order_id=order_id,
                position=line.position,
                product_id=line.product_id,
                product_code=line.code,
                product_name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
                tax_class=line.tax_class,
                is_present=line.is_present,
                parent_position=line.parent_position,
            )
        )
    session.add_all(lines)
    kept: list[OrderCampaign] = []
    for applied in draft.campaigns:
        kept.append(
            OrderCampaign(
                order_id=order_id,
                campaign_id=applied.campaign_id,
                name=applied.name[:100],
                kind=applied.kind,
                effect=applied.effect[:200],
                amount=applied.amount,
            )
        )
        session.add(kept[-1])
        if applied.present is not None:
            session.add(
                Present(
                    customer_id=customer_id,
                    order_id=order_id,
                    campaign_id=applied.campaign_id,
                    product_id=applied.present.id,
                    product_name=applied.present.name,
                    quantity=applied.present_quantity,
                    given_on=draft.received_on,
                )
            )
    if draft.subscription is not None:
        plan = draft.subscription
        sub = Subscription(
            customer_id=customer_id,
            start_month=plan.start_month,
            interval_unit=plan.interval_unit,
            interval_n=plan.interval_n,
            day_of_month=plan.day_of_month,
            next_date=plan.next_date,
            status="active",
            ship_to_id=order.ship_to_id,
            carrier_id=order.carrier_id,
            payment_method=order.payment_method,
        )
        sub.items = [
            SubscriptionItem(product_id=x.product_id, quantity=x.quantity, unit_price=x.unit_price)
            for x in draft.items
            if not x.is_present
        ]
        session.add(sub)
        await session.flush()
        order.subscription_id = sub.id
        order.subscription_due_on = plan.due_on
    session.add(
        Action(
            customer_id=customer_id,
            kind="order",
            staff_id=staff_id,
            call_id=call_id,
            order_id=order_id,
            amount=q.total,
            content=("定期 " if data.slip_type == "subscription" else "受注 ") + draft.summary,
        )
    )
    await record(
        session,
        action="create",
        entity="order",
        entity_id=order_id,
        staff_id=staff_id,
        changes={
            "number": order.number,
            "customer_id": customer_id,
            "total": q.total,
            "lines": [[x.code, x.quantity, x.unit_price] for x in draft.items],
            "subscription_id": order.subscription_id,
            "campaigns": [x.name for x in draft.campaigns],
        },
    )
    await session.flush()
    # The lines just written are the order's lines: no need to read them back.
    set_committed_value(order, "lines", sorted(lines, key=lambda x: x.position))
    return SubmitResult(order=order, created=True, campaigns=kept, carrier_name=draft.carrier_name)


async def order_campaigns(session: AsyncSession, *, order_id: int) -> list[OrderCampaign]:
    """The campaigns applied to an order, as they were applied."""
    rows = await session.scalars(
        select(OrderCampaign).where(OrderCampaign.order_id == order_id).order_by(OrderCampaign.id)
    )
    return list(rows.all())


async def _replayed(session: AsyncSession, order: Order, customer_id: int) -> SubmitResult:
    if order.customer_id != customer_id:
        raise OrderInputError(
            {"form": "受付キーが別の顧客の受注で使われています。開き直してください。"}
        )
    await session.refresh(order, ["lines"])
    return SubmitResult(
        order=order,
        created=False,
        campaigns=await order_campaigns(session, order_id=order.id),
    )
