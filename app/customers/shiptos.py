"""送付先 (M8): the addresses a customer's orders may ship to (home, office, gift recipients).
Ship-tos are never deleted — orders and subscriptions refer to them — only retired."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.customers.editing import bad_kana, normal_kana
from app.customers.models import Customer, ShipTo
from app.customers.postcodes import address_errors, format_postcode, postcode_digits
from app.customers.service import CustomerInputError
from cti_bridge.numbers import display_national, normalise_stored

SHIP_TO_LABELS: dict[str, str] = {
    "label": "送付先の呼び名",
    "name": "氏名",
    "kana": "氏名かな",
    "postcode": "郵便番号",
    "prefecture": "県名",
    "city": "市町村名",
    "street": "番地",
    "building": "マンション・ビル",
    "phone": "電話番号",
}


@dataclass
class ShipToForm:
    """A ship-to as typed (or as stored, for showing it)."""

    label: str = ""
    name: str = ""
    kana: str = ""
    postcode: str = ""
    prefecture: str = ""
    city: str = ""
    street: str = ""
    building: str = ""
    phone: str = ""

    @classmethod
    def of(cls, ship_to: ShipTo) -> ShipToForm:
        return cls(**{f.name: getattr(ship_to, f.name) for f in fields(cls)})


def _clean(form: ShipToForm) -> dict[str, str]:
    """The stored values of a valid form; CustomerInputError with per-field messages."""
    errors: dict[str, str] = {}
    values = {f.name: str(getattr(form, f.name)).strip() for f in fields(form)}
    values["kana"] = normal_kana(values["kana"])
    if not values["name"]:
        errors["name"] = "氏名を入力してください。"
    if bad_kana(values["kana"]):
        errors["kana"] = "氏名かなはひらがなかカタカナで入力してください。"
    for key, limit in (("label", 64), ("name", 100), ("kana", 100)):
        if len(values[key]) > limit:
            errors[key] = f"{SHIP_TO_LABELS[key]}は{limit}文字以内で入力してください。"
    errors.update(
        address_errors(
            postcode=values["postcode"],
            prefecture=values["prefecture"],
            city=values["city"],
            street=values["street"],
            building=values["building"],
        )
    )
    if not errors.get("postcode") and not values["postcode"]:
        errors["postcode"] = "郵便番号を入力してください。"
    if not values["prefecture"] and "prefecture" not in errors:
        errors["prefecture"] = "県名を選んでください。"
    if not values["city"] and "city" not in errors:
        errors["city"] = "市町村名を入力してください。"
    if not values["street"] and "street" not in errors:
        errors["street"] = "番地を入力してください。"
    if values["phone"]:
        number = normalise_stored(values["phone"])
        if not number.number_e164:
            errors["phone"] = "電話番号の形式が正しくありません（例: 0952-32-6611）。"
        else:
            values["phone"] = display_national(number.number_e164)
    if errors:
        raise CustomerInputError(errors)
    values["postcode"] = format_postcode(postcode_digits(values["postcode"]) or "")
    return values


async def list_ship_tos(
    session: AsyncSession, *, customer_id: int, include_retired: bool = False
) -> list[ShipTo]:
    """The customer's ship-tos, active first, in the order they were added."""
    stmt = select(ShipTo).where(ShipTo.customer_id == customer_id)
    if not include_retired:
        stmt = stmt.where(ShipTo.active.is_(True))
    return list((await session.scalars(stmt.order_by(ShipTo.active.desc(), ShipTo.id))).all())


async def get_ship_to(session: AsyncSession, *, customer_id: int, ship_to_id: int) -> ShipTo:
    """One of the customer's ship-tos; LookupError when it is not theirs."""
    ship_to = await session.get(ShipTo, ship_to_id)
    if ship_to is None or ship_to.customer_id != customer_id:
        raise LookupError(ship_to_id)
    return ship_to


async def _refuse_merged(session: AsyncSession, customer_id: int) -> None:
    customer = await session.get(Customer, customer_id)
    if customer is not None and customer.merged_into_id is not None:
        raise CustomerInputError(
            {
                "name": f"この顧客はお届け先コード {customer.merged_into_id:08d} に統合されました。"
                "送付先は統合先で登録してください。"
            }
        )


async def add_ship_to(
    session: AsyncSession, *, customer_id: int, form: ShipToForm, staff_id: int | None
) -> ShipTo:
    """Add a ship-to (validated; nothing written on error) and record it in the history."""
    await _refuse_merged(session, customer_id)
    values = _clean(form)
    ship_to = ShipTo(customer_id=customer_id, active=True, **values)
    session.add(ship_to)
    await session.flush()
    await record(
        session,
        action="ship_to_add",
        entity="customer",
        entity_id=customer_id,
        staff_id=staff_id,
        changes={"ship_to_id": ship_to.id, **{k: v for k, v in values.items() if v}},
    )
    return ship_to


async def update_ship_to(
    session: AsyncSession,
    *,
    customer_id: int,
    ship_to_id: int,
    form: ShipToForm,
    staff_id: int | None,
) -> dict[str, Any]:
    """Change a ship-to; the history gets only the changed fields as ``[old, new]``."""
    await _refuse_merged(session, customer_id)
    ship_to = await get_ship_to(session, customer_id=customer_id, ship_to_id=ship_to_id)
    values = _clean(form)
    changes: dict[str, Any] = {
        key: [getattr(ship_to, key), value]
        for key, value in values.items()
        if getattr(ship_to, key) != value
    }
    if not changes:
        return {}
    for key, value in values.items():
        setattr(ship_to, key, value)
    await session.flush()
    await record(
        session,
        action="ship_to_update",
        entity="customer",
        entity_id=customer_id,
        staff_id=staff_id,
        changes={"ship_to_id": ship_to.id, **changes},
    )
    return changes


async def set_ship_to_active(
    session: AsyncSession,
    *,
    customer_id: int,
    ship_to_id: int,
    active: bool,
    staff_id: int | None,
) -> ShipTo:
    """Retire a ship-to (``active=False``; it stays for the orders that used it) or bring a
    retired one back."""
    ship_to = await get_ship_to(session, customer_id=customer_id, ship_to_id=ship_to_id)
    if ship_to.active == active:
        return ship_to
    ship_to.active = active
    await session.flush()
    await record(
        session,
        action="ship_to_restore" if active else "ship_to_retire",
        entity="customer",
        entity_id=customer_id,
        staff_id=staff_id,
        changes={"ship_to_id": ship_to.id, "label": ship_to.label, "name": ship_to.name},
    )
    return ship_to
