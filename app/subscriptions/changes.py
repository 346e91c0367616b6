"""Registering and changing subscriptions (S1, S4): a new subscription, a change of interval
or day, skipping the next delivery, a pause until a month, resuming, cancelling with a reason
from 解約理由マスタ. Each is previewed first (what changes and the terms to read to the
customer), then saved with a 対応履歴 entry (定期変更) and an entry in the customer's history.
Two people changing one subscription: the second sees a conflict (the version column).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.customers.models import Customer, ShipTo
from app.dates import JST, add_months, add_years
from app.inputs import normalise
from app.masters.models import CancelReason, Carrier, Product, ShippingRate
from app.orders.lines import INTERVALS, PAYMENT_METHODS
from app.orders.models import Order
from app.orders.pricing import PriceLine, quote
from app.responses.service import save_response
from app.subscriptions.models import Subscription, SubscriptionItem
from app.subscriptions.service import (
    day_label,
    following,
    interval_label,
    next_due,
)
from app.subscriptions.terms import CancelTerms, PendingDelivery, Terms, subscription_terms

MAX_ITEMS = 10
MAX_QUANTITY = 999
MAX_MONTHS = 12
MAX_WEEKS = 26
OPERATIONS = {
    "interval": "配送間隔・配送日の変更",
    "skip": "次回のスキップ",
    "pause": "休止",
    "resume": "再開",
    "cancel": "解約",
}


class SubscriptionInputError(ValueError):
    """Bad input: ``errors`` maps each field to its Japanese message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class SubscriptionConflict(Exception):
    """Someone else changed the subscription since the screen was shown."""

    message = "他の担当者がこの定期を変更しました。画面を開き直して確認してください。"


def _int(value: str) -> int | None:
    text = normalise(value).replace(",", "")
    return int(text) if re.fullmatch(r"\d{1,6}", text) else None


def parse_month(value: str) -> dt.date | None:
    """2026/12, 2026-12, 202612 or 2026年12月 → the first day of that month."""
    text = normalise(value)
    m = re.fullmatch(r"(\d{4})\s*[/\-.年]\s*(\d{1,2})\s*月?", text) or re.fullmatch(
        r"(\d{4})(\d{2})", text
    )
    if m is None or not 1 <= int(m[2]) <= 12:
        return None
    return dt.date(int(m[1]), int(m[2]), 1)


def month_end(month: dt.date) -> dt.date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


# --- the schedule as typed -----------------------------------------------------------------


@dataclass
class Schedule:
    interval_unit: str
    interval_n: int
    day_of_month: int  # 1-31 (31: the month's last day); for weeks the weekday follows the date

    @property
    def interval_label(self) -> str:
        return interval_label(self.interval_unit, self.interval_n)

    def after(self, day: dt.date) -> dt.date:
        return following(
            interval_unit=self.interval_unit,
            interval_n=self.interval_n,
            day_of_month=self.day_of_month,
            after=day,
        )


def interval_key(unit: str, n: int) -> str:
    """The order-entry interval choice for a schedule (m1 毎月, m2 2ヶ月ごと, m, w)."""
    if unit == "week":
        return "w"
    return {1: "m1", 2: "m2"}.get(n, "m")


def parse_schedule(
    *, interval: str, interval_n: str, day: str, errors: dict[str, str]
) -> Schedule | None:
    """配送月 (毎月 / 2ヶ月ごと / Nヶ月ごと / N週ごと) and 配送日 (1〜31, 31 = 末日)."""
    choice = INTERVALS.get(interval)
    if choice is None:
        errors["interval"] = "配送月を選んでください。"
        return None
    _label, unit, n = choice
    if n is None:
        n = _int(interval_n)
        limit = MAX_MONTHS if unit == "month" else MAX_WEEKS
        if n is None or not 1 <= n <= limit:
            errors["interval_n"] = f"間隔は1〜{limit}で入力してください。"
            return None
    dom = 0
    if unit == "month":
        text = normalise(day)
        parsed = 31 if text in ("末", "末日") else _int(text.removesuffix("日"))
        if parsed is None or not 1 <= parsed <= 31:
            errors["day"] = "配送日は1〜31日（31日は末日）で入力してください。"
            return None
        dom = parsed
    return Schedule(unit, n, dom)


# --- prices -----------------------------------------------------------------------------------


async def delivery_total(
    session: AsyncSession,
    *,
    customer_id: int,
    ship_to_id: int | None,
    carrier_id: int | None,
    payment: str,
    items: list[tuple[Product, int, int]],
) -> int | None:
    """One delivery's total (tax, shipping and COD fee included) as the daily run will price
    it; None when the shipping master has no rate for the destination."""
    if carrier_id is None or not items:
        return None
    prefecture: str | None
    if ship_to_id is not None:
        prefecture = await session.scalar(select(ShipTo.prefecture).where(ShipTo.id == ship_to_id))
    else:
        prefecture = await session.scalar(
            select(Customer.prefecture).where(Customer.id == customer_id)
        )
    rate = await session.scalar(
        select(ShippingRate).where(
            ShippingRate.carrier_id == carrier_id, ShippingRate.prefecture == (prefecture or "")
        )
    )
    if rate is None:
        return None
    lines = [
        PriceLine(p.code, p.name, qty, price, p.tax_class, p.is_present) for p, qty, price in items
    ]
    return quote(
        lines, shipping_fee=rate.fee, cod_fee=rate.cod_fee if payment == "cod" else 0
    ).total


def terms_for(
    schedule: Schedule, *, start_month: dt.date, next_date: dt.date, later_total: int
) -> Terms:
    """The terms read to the customer, from the next delivery on."""
    return subscription_terms(
        interval_unit=schedule.interval_unit,
        interval_n=schedule.interval_n,
        day_of_month=schedule.day_of_month,
        start_month=next_date if schedule.interval_unit == "week" else start_month,
        on_or_after=next_date,
        later_total=later_total,
    )


# --- a new subscription ---------------------------------------------------------------------


@dataclass
class NewInput:
    """The 新規登録 form as typed."""

    start_month: str = ""
    interval: str = "m1"
    interval_n: str = ""
    day: str = ""
    codes: list[str] = field(default_factory=list)
    quantities: list[str] = field(default_factory=list)
    ship_to: str = ""
    payment: str = "cod"
    carrier: str = ""


@dataclass
class NewPlan:
    data: NewInput
    schedule: Schedule
    start_month: dt.date
    next_date: dt.date
    items: list[tuple[Product, int, int]]  # product, quantity, unit price
    ship_to_id: int | None
    carrier: Carrier
    payment: str
    total: int
    terms: Terms


@dataclass
class FormChoices:
    carriers: list[tuple[str, str]]
    ship_tos: list[tuple[str, str]]
    payments: list[tuple[str, str]]
    intervals: list[tuple[str, str]]
    cancel_reasons: list[tuple[str, str]]


async def form_choices(session: AsyncSession, *, customer_id: int) -> FormChoices:
    """What the subscription forms offer: active carriers, the customer's ship-tos, payment
    methods, intervals and the active cancel reasons."""
    carriers = await session.execute(
        select(Carrier.code, Carrier.name).where(Carrier.active.is_(True)).order_by(Carrier.id)
    )
    customer = await session.get(Customer, customer_id)
    own = f"ご本人（{customer.prefecture}{customer.city}）" if customer else "ご本人"
    ship_tos = await session.scalars(
        select(ShipTo)
        .where(ShipTo.customer_id == customer_id, ShipTo.active.is_(True))
        .order_by(ShipTo.id)
    )
    reasons = await session.execute(
        select(CancelReason.id, CancelReason.name)
        .where(CancelReason.active.is_(True), CancelReason.kind.in_(("cancel", "both")))
        .order_by(CancelReason.sort_order, CancelReason.id)
    )
    return FormChoices(
        carriers=[(c, n) for c, n in carriers],
        ship_tos=[("", own)]
        + [
            (str(s.id), f"{s.label or '送付先'} {s.name}（{s.prefecture}{s.city}）")
            for s in ship_tos
        ],
        payments=list(PAYMENT_METHODS.items()),
        intervals=[(k, v[0]) for k, v in INTERVALS.items()],
        cancel_reasons=[(str(i), n) for i, n in reasons],
    )


async def plan_new(
    session: AsyncSession, *, customer_id: int, data: NewInput, today: dt.date
) -> NewPlan:
    """Check a new subscription and compute its next delivery and terms; writes nothing.
    Raises :class:`SubscriptionInputError`."""
    errors: dict[str, str] = {}
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise LookupError(customer_id)
    if customer.merged_into_id is not None:
        errors["form"] = "この顧客は統合済みです。統合先の顧客で登録してください。"
    start = parse_month(data.start_month)
    if start is None:
        errors["start_month"] = "開始月を 2026/12 の形式で入力してください。"
    elif start < today.replace(day=1):
        errors["start_month"] = "開始月に過ぎた月は指定できません。"
    elif start > add_years(today, 1):
        errors["start_month"] = (
            f"開始月は1年先（{add_years(today, 1):%Y/%m}）までの月を指定してください。"
        )
    schedule = parse_schedule(
        interval=data.interval, interval_n=data.interval_n, day=data.day, errors=errors
    )
    items: list[tuple[Product, int, int]] = []
    typed = [
        (i, normalise(c), q)
        for i, (c, q) in enumerate(zip(data.codes, data.quantities, strict=False))
        if normalise(c)
    ]
    if not typed:
        errors["items"] = "商品を1つ以上入力してください。"
    if len(typed) > MAX_ITEMS:
        errors["items"] = f"商品は{MAX_ITEMS}件までです。"
    for i, code, qty_text in typed[:MAX_ITEMS]:
        product = await session.scalar(select(Product).where(Product.code == code))
        if product is None:
            errors[f"item-{i}-code"] = "未登録の商品コードです。"
            continue
        if not product.active:
            errors[f"item-{i}-code"] = "販売を終了した商品です。"
        elif not product.subscribable:
            errors[f"item-{i}-code"] = "定期は定期可の商品のみです。"
        qty = _int(qty_text)
        if qty is None or not 1 <= qty <= MAX_QUANTITY:
            errors[f"item-{i}-qty"] = f"個数は1〜{MAX_QUANTITY}で入力してください。"
            continue
        items.append((product, qty, product.price))
    carrier = await session.scalar(
        select(Carrier).where(Carrier.code == data.carrier, Carrier.active.is_(True))
    )
    if carrier is None:
        errors["carrier"] = "配送会社を選んでください。"
    if data.payment not in PAYMENT_METHODS:
        errors["payment"] = "支払方法を選んでください。"
    ship_to_id: int | None = None
    if data.ship_to:
        found = await session.scalar(
            select(ShipTo.id).where(
                ShipTo.id == (_int(data.ship_to) or 0),
                ShipTo.customer_id == customer_id,
                ShipTo.active.is_(True),
            )
        )
        if found is None:
            errors["ship_to"] = "発送先を選んでください。"
        ship_to_id = found
    total: int | None = None
    if not errors and carrier is not None:
        total = await delivery_total(
            session,
            customer_id=customer_id,
            ship_to_id=ship_to_id,
            carrier_id=carrier.id,
            payment=data.payment,
            items=items,
        )
        if total is None:
            errors["ship_to"] = "送料マスタに発送先の都道府県の送料がありません。"
    if errors:
        raise SubscriptionInputError(errors)
    assert start is not None and schedule is not None and carrier is not None and total is not None
    if schedule.interval_unit == "week":
        # Weekly: the first delivery is the start month's first day on or after today (the
        # weekday follows from it); the day field is not used.
        next_date = max(start, today)
        start_month = next_date
    else:
        start_month = start
        next_date = next_due(
            start_month=start,
            interval_unit="month",
            interval_n=schedule.interval_n,
            day_of_month=schedule.day_of_month,
            on_or_after=today,
        )
    terms = terms_for(schedule, start_month=start_month, next_date=next_date, later_total=total)
    return NewPlan(
        data=data,
        schedule=schedule,
        start_month=start_month,
        next_date=next_date,
        items=items,
        ship_to_id=ship_to_id,
        carrier=carrier,
        payment=data.payment,
        total=total,
        terms=terms,
    )


def _responded_at(now: dt.datetime) -> str:
    return now.astimezone(JST).strftime("%Y/%m/%d %H:%M:%S")


def _items_text(items: list[tuple[str, int]]) -> str:
    return "、".join(f"{name} {qty}個" for name, qty in items)


async def create_subscription(
    session: AsyncSession,
    *,
    customer_id: int,
    data: NewInput,
    staff_id: int,
    call_id: int | None,
    now: dt.datetime,
) -> Subscription:
    """Register a new subscription (checked again here) with a 対応履歴 entry (定期変更) and
    an entry in the customer's history. The daily run makes its orders."""
    today = now.astimezone(JST).date()
    plan = await plan_new(session, customer_id=customer_id, data=data, today=today)
    sub = Subscription(
        customer_id=customer_id,
        start_month=plan.start_month,
        interval_unit=plan.schedule.interval_unit,
        interval_n=plan.schedule.interval_n,
        day_of_month=plan.schedule.day_of_month or plan.next_date.day,
        next_date=plan.next_date,
        status="active",
        ship_to_id=plan.ship_to_id,
        carrier_id=plan.carrier.id,
        payment_method=plan.payment,
        cancel_reason="",
    )
    sub.items = [
        SubscriptionItem(product_id=p.id, quantity=q, unit_price=price)
        for p, q, price in plan.items
    ]
    session.add(sub)
    await session.flush()
    schedule_text = (
        f"{plan.schedule.interval_label} "
        f"{day_label(sub.interval_unit, sub.day_of_month, sub.next_date)}"
    )
    products = _items_text([(p.name, q) for p, q, _ in plan.items])
    await save_response(
        session,
        customer_id=customer_id,
        staff_id=staff_id,
        call_id=call_id,
        responded_at=_responded_at(now),
        category="定期変更",
        channel="電話",
        content=f"定期No.{sub.id} 新規申し込み: {products}（{schedule_text}）",
        answer=(
            f"次回配送日 {sub.next_date:%Y/%m/%d}、1回 {plan.total:,}円。ご説明事項を読み上げ済み。"
        ),
    )
    await record(
        session,
        action="subscription_create",
        entity="customer",
        entity_id=customer_id,
        staff_id=staff_id,
        changes={
            "定期No.": sub.id,
            "開始月": f"{sub.start_month:%Y/%m}",
            "配送月・配送日": schedule_text,
            "商品": products,
            "次回配送日": f"{sub.next_date:%Y/%m/%d}",
        },
    )
    return sub


# --- changes --------------------------------------------------------------------------------


@dataclass
class ChangeInput:
    op: str
    version: str = ""
    interval: str = ""
    interval_n: str = ""
    day: str = ""
    until: str = ""  # pause: the last month of the pause
    reason: str = ""  # cancel: a CancelReason id
    note: str = ""


@dataclass
class ChangePlan:
    """What a change will do: the new values, a sentence for the 対応履歴, the terms."""

    op: str
    summary: str
    values: dict[str, Any]
    changes: dict[str, Any]  # for the customer's history: label -> [old, new]
    terms: Terms | None
    reason_name: str = ""
    cancel_terms: CancelTerms | None = None


async def _items(session: AsyncSession, sub: Subscription) -> list[tuple[Product, int, int]]:
    rows = await session.execute(
        select(Product, SubscriptionItem.quantity, SubscriptionItem.unit_price)
        .join(SubscriptionItem, SubscriptionItem.product_id == Product.id)
        .where(SubscriptionItem.subscription_id == sub.id)
        .order_by(SubscriptionItem.id)
    )
    return [(p, q, price) for p, q, price in rows]


def _schedule_of(sub: Subscription) -> Schedule:
    return Schedule(sub.interval_unit, sub.interval_n, sub.day_of_month)


def _first_after(schedule: Schedule, anchor: dt.date, day: dt.date) -> dt.date:
    """The first delivery of the schedule through ``anchor`` after ``day``."""
    d = anchor
    while d <= day:
        d = schedule.after(d)
    return d


def _label_of(schedule: Schedule, next_date: dt.date | None) -> str:
    day = day_label(schedule.interval_unit, schedule.day_of_month, next_date)
    return f"{schedule.interval_label} {day}"


async def plan_change(
    session: AsyncSession, *, sub: Subscription, data: ChangeInput, today: dt.date
) -> ChangePlan:
    """Check a change and work out its effect; writes nothing. Raises
    :class:`SubscriptionInputError` or :class:`SubscriptionConflict`."""
    if data.op not in OPERATIONS:
        raise SubscriptionInputError({"op": "変更の種類を選んでください。"})
    if normalise(data.version) != str(sub.version):
        raise SubscriptionConflict()
    if sub.status == "cancelled":
        raise SubscriptionInputError({"op": "解約済みの定期は変更できません。"})
    errors: dict[str, str] = {}
    old = _schedule_of(sub)
    current = sub.next_date or today
    tomorrow = today + dt.timedelta(days=1)
    values: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    schedule = old
    if data.op == "interval":
        new = parse_schedule(
            interval=data.interval, interval_n=data.interval_n, day=data.day, errors=errors
        )
        if new is None:
            raise SubscriptionInputError(errors)
        schedule = new
        # A delivery due today is not made yet (the run moves next_date on once it is), so
        # the change may keep it today.
        if new.interval_unit == "week":
            nxt = max(current, today)
            start_month = nxt
        else:
            # The next delivery stays in its month, on the new day; when that day has passed,
            # this month's delivery keeps its date and the new day applies from the next one.
            start_month = current.replace(day=1)
            nxt = add_months(start_month, 0, new.day_of_month)
            if nxt < today:
                nxt = current if current >= today else nxt
            while nxt < today:
                nxt = new.after(nxt)
        values = {
            "interval_unit": new.interval_unit,
            "interval_n": new.interval_n,
            "day_of_month": new.day_of_month or nxt.day,
            "start_month": start_month,
            "next_date": nxt,
        }
        summary = f"配送間隔を{_label_of(old, sub.next_date)}から{_label_of(new, nxt)}へ変更"
        changes = {"配送月・配送日": [_label_of(old, sub.next_date), _label_of(new, nxt)]}
    elif data.op == "skip":
        nxt = old.after(current)
        while nxt < tomorrow:
            nxt = old.after(nxt)
        values = {"next_date": nxt}
        summary = f"次回（{current:%Y/%m/%d}）のお届けをスキップ"
    elif data.op == "pause":
        until = parse_month(data.until)
        if until is None:
            raise SubscriptionInputError(
                {"until": "休止する最後の月を 2026/12 の形式で入力してください。"}
            )
        last = month_end(until)
        if last < today:
            raise SubscriptionInputError({"until": "休止は今月以降の月を指定してください。"})
        if until > add_years(today, 1):
            raise SubscriptionInputError(
                {"until": f"休止は1年先（{add_years(today, 1):%Y/%m}）までの月を指定してください。"}
            )
        nxt = _first_after(old, current, last)
        values = {"status": "paused", "paused_until": last, "next_date": nxt}
        summary = f"{until:%Y/%m}まで休止"
        changes = {
            "状態": ["継続" if sub.status == "active" else "休止中", f"休止中（〜{last:%Y/%m/%d}）"]
        }
    elif data.op == "resume":
        if sub.status != "paused":
            raise SubscriptionInputError({"op": "休止中の定期ではありません。"})
        if old.interval_unit == "week":
            nxt = current
            step = dt.timedelta(weeks=old.interval_n)
            while nxt - step > today:
                nxt -= step
        else:
            nxt = next_due(
                start_month=sub.start_month,
                interval_unit="month",
                interval_n=old.interval_n,
                day_of_month=old.day_of_month,
                on_or_after=tomorrow,
            )
        values = {"status": "active", "paused_until": None, "next_date": nxt}
        summary = "休止を解除して再開"
        changes = {"状態": ["休止中", "継続"]}
    else:  # cancel
        reason = None
        rid = _int(data.reason)
        if rid is not None:
            reason = await session.scalar(
                select(CancelReason).where(
                    CancelReason.id == rid,
                    CancelReason.active.is_(True),
                    or_(CancelReason.kind == "cancel", CancelReason.kind == "both"),
                )
            )
        if reason is None:
            raise SubscriptionInputError({"reason": "解約理由を選んでください。"})
        note = data.note.strip()
        if len(note) > 500:
            raise SubscriptionInputError({"note": "備考は500文字以内で入力してください。"})
        text = reason.name + (f"（{note}）" if note else "")
        values = {
            "status": "cancelled",
            "next_date": None,
            "paused_until": None,
            "cancel_reason_id": reason.id,
            "cancel_reason": text,
        }
        summary = f"解約（理由: {text}）"
        changes = {
            "状態": ["継続" if sub.status == "active" else "休止中", "解約"],
            "解約理由": text,
        }
        # Made already and not yet with the customer (by its お届け予定日, else 出荷予定日):
        # the cancellation does not stop it.
        arrives = func.coalesce(Order.deliver_on, Order.ship_on)
        pending = [
            PendingDelivery(number, deliver_on, ship_on)
            for number, deliver_on, ship_on in await session.execute(
                select(Order.number, Order.deliver_on, Order.ship_on)
                .where(
                    Order.subscription_id == sub.id,
                    Order.status.in_(("confirmed", "shipped")),
                    or_(arrives.is_(None), arrives >= today),
                )
                .order_by(Order.id)
            )
        ]
        return ChangePlan(
            data.op,
            summary,
            values,
            changes,
            None,
            reason.name,
            CancelTerms(next_date=sub.next_date, paused=sub.status == "paused", pending=pending),
        )
    nxt_date: dt.date = values["next_date"]
    changes.setdefault("次回配送日", [f"{current:%Y/%m/%d}", f"{nxt_date:%Y/%m/%d}"])
    if "次回配送日" in changes and changes["次回配送日"][0] == changes["次回配送日"][1]:
        del changes["次回配送日"]
    total = await delivery_total(
        session,
        customer_id=sub.customer_id,
        ship_to_id=sub.ship_to_id,
        carrier_id=sub.carrier_id,
        payment=sub.payment_method,
        items=await _items(session, sub),
    )
    terms = terms_for(
        schedule,
        start_month=values.get("start_month", sub.start_month),
        next_date=nxt_date,
        later_total=total or 0,
    )
    return ChangePlan(data.op, f"{summary}。次回配送日 {nxt_date:%Y/%m/%d}", values, changes, terms)


async def change_subscription(
    session: AsyncSession,
    *,
    customer_id: int,
    subscription_id: int,
    data: ChangeInput,
    staff_id: int,
    call_id: int | None,
    now: dt.datetime,
) -> tuple[Subscription, ChangePlan]:
    """Apply a change (checked again here) with its 対応履歴 entry (定期変更) and history
    entry. Raises LookupError, :class:`SubscriptionInputError` or
    :class:`SubscriptionConflict` (nothing written)."""
    sub = await session.get(Subscription, subscription_id)
    if sub is None or sub.customer_id != customer_id:
        raise LookupError(subscription_id)
    plan = await plan_change(session, sub=sub, data=data, today=now.astimezone(JST).date())
    for key, value in plan.values.items():
        setattr(sub, key, value)
    await session.flush()  # the version column: a concurrent change fails here
    await save_response(
        session,
        customer_id=customer_id,
        staff_id=staff_id,
        call_id=call_id,
        responded_at=_responded_at(now),
        category="定期変更",
        channel="電話",
        content=f"定期No.{sub.id} {OPERATIONS[plan.op]}",
        answer=plan.summary,
    )
    await record(
        session,
        action="subscription_update",
        entity="customer",
        entity_id=customer_id,
        staff_id=staff_id,
        purpose=OPERATIONS[plan.op],
        changes={"定期No.": sub.id, **plan.changes},
    )
    return sub, plan
