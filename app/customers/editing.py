"""顧客詳細 (M3): editing a customer's basic data, with optimistic locking and a change history
(M7) of only the fields that changed."""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from dataclasses import dataclass, field, fields, replace
from typing import Any

import jaconv
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from app.audit.service import record
from app.customers.birthdate import parse_birth_date
from app.customers.keys import kana_key, name_key
from app.customers.models import Customer, CustomerEmail, CustomerPhone
from app.customers.postcodes import address_errors, format_postcode, postcode_digits
from app.customers.service import PHONE_KINDS, CustomerInputError
from app.db import utcnow
from app.inputs import normalise
from cti_bridge.numbers import display_national, last8, normalise_stored

__all__ = [
    "FIELD_LABELS",
    "FLAGS",
    "GENDERS",
    "DetailForm",
    "EditConflict",
    "MergeRow",
    "PhoneRow",
    "form_from_customer",
    "form_from_json",
    "form_to_json",
    "load_customer",
    "merge_forms",
    "update_customer",
]

# Free flags (M3, S2 設定1~48) until admins get a master for them. ``no_call`` is the
# customers.no_call column; the others live in customers.flags as {key: true}.
FLAGS: tuple[tuple[str, str], ...] = (
    ("no_call", "電話不可"),
    ("no_mail", "メール不可"),
    ("caution", "要注意"),
    ("corporate", "法人"),
    ("family", "家族会員"),
    ("referrer", "紹介者"),
    ("vip", "優待"),
    ("other", "その他"),
)
FLAG_LABELS = dict(FLAGS)
GENDERS: tuple[tuple[str, str], ...] = (("", "不明"), ("M", "男性"), ("F", "女性"))

FIELD_LABELS: dict[str, str] = {
    "phones": "電話番号",
    "name": "顧客名",
    "kana": "顧客名かな",
    "postcode": "郵便番号",
    "prefecture": "県名",
    "city": "市町村名",
    "street": "番地",
    "building": "マンション・ビル",
    "company1": "会社部署名1",
    "company2": "会社部署名2",
    "birth_date": "生年月日",
    "gender": "性別",
    "dm_required": "DM",
    "emails": "メールアドレス",
    "flags": "フラグ",
    "alert": "アラート",
    "karte": "カルテ",
    "memo": "メモ",
}
FIELD_ORDER: tuple[str, ...] = tuple(FIELD_LABELS)

_LIMITS: dict[str, int] = {
    "name": 100,
    "kana": 100,
    "company1": 200,
    "company2": 200,
    "alert": 500,
    "karte": 4000,
    "memo": 4000,
}
PURPOSE_LIMIT = 200
_SPACES = re.compile(r"\s+")
_NOT_KANA = re.compile(r"[\u3005\u3400-\u9fff\uf900-\ufaff0-9]")  # kanji, 々, digits
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
BAD_PHONE = "電話番号の形式が正しくありません（例: 0952-32-6611）。"
BAD_EMAIL = "メールアドレスの形式が正しくありません（例: taro@example.jp）。"


@dataclass
class PhoneRow:
    number: str = ""
    kind: str = "home"
    label: str = ""


@dataclass
class DetailForm:
    """The 顧客詳細 form as typed (or as stored, for showing it). ``karte`` is ``None`` when
    the operator's role may not read it: the stored カルテ is then left as it is."""

    phones: list[PhoneRow] = field(default_factory=list)
    name: str = ""
    kana: str = ""
    postcode: str = ""
    prefecture: str = ""
    city: str = ""
    street: str = ""
    building: str = ""
    company1: str = ""
    company2: str = ""
    birth_date: str = ""
    gender: str = ""
    dm_required: bool = True
    emails: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    alert: str = ""
    karte: str | None = None
    memo: str = ""


class EditConflict(Exception):
    """Another operator saved the customer first; nothing was written. When raised from a
    failed flush the session must be rolled back before it is used again."""

    def __init__(self, current_version: int | None) -> None:
        super().__init__("他のオペレータが先に更新しました。")
        self.current_version = current_version


def _phone_display(number: str) -> str:
    parsed = normalise_stored(number) if number.strip() else None
    if parsed is not None and parsed.number_e164:
        return display_national(parsed.number_e164) or number.strip()
    return number.strip()


def _phone_text(number: str, kind: str, label: str) -> str:
    detail = PHONE_KINDS.get(kind, kind) + (f"・{label}" if label else "")
    return f"{number}（{detail}）"


def form_from_customer(customer: Customer, *, with_karte: bool) -> DetailForm:
    """The form showing what is stored (phones and e-mails must be loaded)."""
    flags = [key for key, _ in FLAGS if key != "no_call" and (customer.flags or {}).get(key)]
    if customer.no_call:
        flags.insert(0, "no_call")
    return DetailForm(
        phones=[
            PhoneRow(display_national(p.e164) or p.raw, p.kind, p.label) for p in customer.phones
        ],
        name=customer.name,
        kana=customer.kana,
        postcode=customer.postcode,
        prefecture=customer.prefecture,
        city=customer.city,
        street=customer.street,
        building=customer.building,
        company1=customer.company1,
        company2=customer.company2,
        birth_date=customer.birth_date.strftime("%Y/%m/%d") if customer.birth_date else "",
        gender=customer.gender,
        dm_required=customer.dm_required,
        emails=[e.address for e in customer.emails],
        flags=flags,
        alert=customer.alert,
        karte=customer.karte if with_karte else None,
        memo=customer.memo,
    )


def form_to_json(form: DetailForm) -> str:
    """The form as JSON (the values a form was opened with travel in a hidden field)."""
    data: dict[str, Any] = {f.name: getattr(form, f.name) for f in fields(form)}
    data["phones"] = [[p.number, p.kind, p.label] for p in form.phones]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def form_from_json(text: str) -> DetailForm | None:
    """The form back from :func:`form_to_json`; ``None`` for anything else."""
    try:
        data = json.loads(text)
        phones = [PhoneRow(str(n), str(k), str(lb)) for n, k, lb in data.pop("phones")]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    form = DetailForm(phones=phones)
    for f in fields(form):
        if f.name == "phones" or f.name not in data:
            continue
        value, default = data[f.name], getattr(form, f.name)
        if f.name == "karte" and value is None:
            continue
        if isinstance(default, list):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return None
        elif not isinstance(value, type(default) if default is not None else str):
            return None
        setattr(form, f.name, value)
    return form


def normal_kana(text: str) -> str:
    """かな as stored: full-width katakana (hiragana and half-width accepted), single spaces."""
    value = jaconv.hira2kata(unicodedata.normalize("NFKC", text or ""))
    return _SPACES.sub(" ", value).strip()


def bad_kana(kana: str) -> bool:
    """Kanji or digits where かな belongs."""
    return bool(_NOT_KANA.search(kana))


def _birth_value(text: str, today: dt.date) -> str:
    try:
        day = parse_birth_date(text, today=today)
    except ValueError:
        return text.strip()
    return day.isoformat() if day else ""


def comparable(form: DetailForm, *, today: dt.date | None = None) -> dict[str, str]:
    """Each field as one display string, equal when the values mean the same (0952326611 and
    0952-32-6611, さが and サガ, 1970/4/1 and 昭和45年4月1日)."""
    today = today or dt.date.today()
    digits = postcode_digits(form.postcode)
    out = {
        "phones": "\n".join(
            _phone_text(_phone_display(p.number), p.kind, p.label.strip())
            for p in form.phones
            if p.number.strip()
        ),
        "name": form.name.strip(),
        "kana": normal_kana(form.kana),
        "postcode": format_postcode(digits) if digits else form.postcode.strip(),
        "prefecture": form.prefecture,
        "city": form.city.strip(),
        "street": form.street.strip(),
        "building": form.building.strip(),
        "company1": form.company1.strip(),
        "company2": form.company2.strip(),
        "birth_date": _birth_value(form.birth_date, today),
        "gender": dict(GENDERS).get(form.gender, form.gender),
        "dm_required": "必要" if form.dm_required else "不要",
        "emails": "\n".join(e for e in (normalise(x).lower() for x in form.emails) if e),
        "flags": "、".join(label for key, label in FLAGS if key in form.flags),
        "alert": form.alert.strip(),
        "karte": (form.karte or "").strip(),
        "memo": form.memo.strip(),
    }
    if form.karte is None:
        del out["karte"]
    return out


@dataclass
class MergeRow:
    """One field of a conflict: what is stored now, what the operator typed, what the form
    now proposes to save."""

    key: str
    label: str
    theirs: str
    mine: str
    merged: str
    clash: bool  # both operators changed this field, differently


def merge_forms(
    *, original: DetailForm | None, mine: DetailForm, theirs: DetailForm
) -> tuple[DetailForm, list[MergeRow]]:
    """A three-way merge after a conflict: the operator's own changes (``mine`` differs from
    the ``original`` the form was opened with) are kept, every other field takes what the
    other operator stored (``theirs``). Rows: the fields where ``theirs`` and ``mine`` differ.
    Without the original, ``mine`` is proposed everywhere."""
    a = comparable(theirs)
    b = comparable(mine)
    o = comparable(original) if original is not None else None
    merged = replace(mine)
    rows: list[MergeRow] = []
    for key in FIELD_ORDER:
        if key not in b or key not in a or a[key] == b[key]:
            continue
        mine_changed = o is None or o.get(key) != b[key]
        theirs_changed = o is not None and o.get(key) != a[key]
        if not mine_changed:
            value = getattr(theirs, key)
            setattr(merged, key, list(value) if isinstance(value, list) else value)
        rows.append(
            MergeRow(
                key,
                FIELD_LABELS[key],
                a[key],
                b[key],
                a[key] if not mine_changed else b[key],
                mine_changed and theirs_changed,
            )
        )
    return merged, rows


@dataclass
class _Clean:
    columns: dict[str, Any]
    phones: list[tuple[str, str, str, str]]  # raw, e164, kind, label
    emails: list[str]
    flags: dict[str, Any]


def _validate(
    form: DetailForm, *, stored_flags: dict[str, Any], today: dt.date
) -> tuple[_Clean, dict[str, str]]:
    errors: dict[str, str] = {}
    text = {
        key: str(getattr(form, key)).strip()
        for key in ("name", "company1", "company2", "city", "street", "building")
    }
    text["alert"] = form.alert.strip()
    text["memo"] = form.memo.strip()
    kana = normal_kana(form.kana)
    if not text["name"]:
        errors["name"] = "顧客名を入力してください。"
    if bad_kana(kana):
        errors["kana"] = "顧客名かなはひらがなかカタカナで入力してください。"
    karte = form.karte.strip() if form.karte is not None else None
    for key, limit in _LIMITS.items():
        value = kana if key == "kana" else karte if key == "karte" else text.get(key)
        if value is not None and len(value) > limit:
            errors[key] = f"{FIELD_LABELS[key]}は{limit}文字以内で入力してください。"
    errors.update(
        address_errors(
            postcode=form.postcode,
            prefecture=form.prefecture,
            city=text["city"],
            street=text["street"],
            building=text["building"],
        )
    )
    try:
        birth = parse_birth_date(form.birth_date, today=today)
    except ValueError as exc:
        errors["birth_date"] = str(exc)
        birth = None
    if form.gender not in dict(GENDERS):
        errors["gender"] = "性別を選んでください。"

    phones: list[tuple[str, str, str, str]] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(form.phones):
        raw, label = row.number.strip(), row.label.strip()
        if not raw:
            if label:
                errors[f"phones.{i}"] = "電話番号を入力してください。"
            continue
        number = normalise_stored(raw)
        if len(raw) > 32 or not number.number_e164:
            errors[f"phones.{i}"] = BAD_PHONE
        elif number.number_e164 in seen:
            errors[f"phones.{i}"] = "同じ電話番号が重複しています。"
        elif row.kind not in PHONE_KINDS:
            errors[f"phones.{i}"] = "電話の種類を選んでください。"
        elif len(label) > 64:
            errors[f"phones.{i}"] = "電話のラベルは64文字以内で入力してください。"
        else:
            seen[number.number_e164] = i
            phones.append((raw, number.number_e164, row.kind, label))

    emails: list[str] = []
    for i, typed in enumerate(form.emails):
        address = normalise(typed).lower()
        if not address:
            continue
        if len(address) > 254 or not _EMAIL.match(address):
            errors[f"emails.{i}"] = BAD_EMAIL
        elif address in emails:
            errors[f"emails.{i}"] = "同じメールアドレスが重複しています。"
        else:
            emails.append(address)

    flags = {k: v for k, v in stored_flags.items() if k not in FLAG_LABELS}
    flags.update({key: True for key, _ in FLAGS if key != "no_call" and key in form.flags})
    digits = postcode_digits(form.postcode) or ""
    columns: dict[str, Any] = {
        **text,
        "kana": kana,
        "name_key": name_key(text["name"]),
        "kana_key": kana_key(kana),
        "postcode": format_postcode(digits),
        "prefecture": form.prefecture,
        "birth_date": birth,
        "gender": form.gender,
        "dm_required": form.dm_required,
        "no_call": "no_call" in form.flags,
    }
    if karte is not None:
        columns["karte"] = karte
    return _Clean(columns, phones, emails, flags), errors


def _flag_labels(no_call: bool, flags: dict[str, Any]) -> list[str]:
    return [
        label
        for key, label in FLAGS
        if (no_call if key == "no_call" else bool((flags or {}).get(key)))
    ]


def _history_values(
    columns: dict[str, Any],
    phones: list[tuple[str, str, str]],  # e164 or raw, kind, label
    emails: list[str],
    flags: dict[str, Any],
) -> dict[str, Any]:
    """Field values as the change history records them."""
    out: dict[str, Any] = {
        key: columns[key]
        for key in FIELD_ORDER
        if key in columns and key not in ("phones", "emails", "flags", "birth_date")
    }
    out["birth_date"] = columns["birth_date"].isoformat() if columns["birth_date"] else None
    out["phones"] = [
        _phone_text(display_national(number) or number, kind, label)
        for number, kind, label in phones
    ]
    out["emails"] = list(emails)
    out["flags"] = _flag_labels(columns["no_call"], flags)
    return out


def _stored_values(customer: Customer, *, with_karte: bool) -> dict[str, Any]:
    columns = {
        key: getattr(customer, key)
        for key in (
            "name",
            "kana",
            "postcode",
            "prefecture",
            "city",
            "street",
            "building",
            "company1",
            "company2",
            "birth_date",
            "gender",
            "dm_required",
            "alert",
            "memo",
            "no_call",
        )
    }
    if with_karte:
        columns["karte"] = customer.karte
    return _history_values(
        columns,
        [(p.e164 or p.raw, p.kind, p.label) for p in customer.phones],
        [e.address for e in customer.emails],
        customer.flags or {},
    )


async def load_customer(session: AsyncSession, *, customer_id: int) -> Customer | None:
    """The customer with phones and e-mails, freshly read (version included)."""
    return (
        await session.scalars(
            select(Customer)
            .where(Customer.id == customer_id)
            .options(selectinload(Customer.phones), selectinload(Customer.emails))
            .execution_options(populate_existing=True)
        )
    ).one_or_none()


def _apply(customer: Customer, clean: _Clean) -> None:
    for key, value in clean.columns.items():
        setattr(customer, key, value)
    customer.flags = clean.flags
    by_e164 = {p.e164: p for p in customer.phones}
    phones: list[CustomerPhone] = []
    for position, (raw, e164, kind, label) in enumerate(clean.phones):
        phone = by_e164.pop(e164, None) or CustomerPhone(e164=e164)
        phone.raw, phone.last8, phone.kind, phone.label = raw, last8(e164), kind, label
        phone.position = position
        phones.append(phone)
    customer.phones = phones
    by_address = {e.address: e for e in customer.emails}
    emails: list[CustomerEmail] = []
    for position, address in enumerate(clean.emails):
        email = by_address.pop(address, None) or CustomerEmail(address=address)
        email.position = position
        emails.append(email)
    customer.emails = emails
    customer.updated_at = utcnow()


async def update_customer(
    session: AsyncSession,
    *,
    customer_id: int,
    version: int,
    form: DetailForm,
    staff_id: int | None,
    purpose: str = "",
    ip: str = "",
    today: dt.date | None = None,
) -> dict[str, list[Any]]:
    """Save the 顧客詳細 form over the customer's stored data.

    ``version`` is the version the form was opened with: when another operator saved since,
    :class:`EditConflict` is raised and nothing is written (also when the race is only
    caught by the locked UPDATE — then roll the session back). Bad input raises
    :class:`CustomerInputError` with a Japanese message per field (``phones.0``,
    ``emails.1``, ``birth_date`` …), nothing written. Otherwise the customer is updated
    (search keys, phones' E.164 and last 8 digits, ``updated_at``, version), and one audit
    entry (action ``update``) records only the changed fields as ``{field: [old, new]}``
    with ``purpose``. Returns those changes; empty when nothing changed (nothing written).
    Raises LookupError when there is no such customer.
    """
    today = today or dt.date.today()
    customer = await load_customer(session, customer_id=customer_id)
    if customer is None:
        raise LookupError(customer_id)
    if customer.merged_into_id is not None:
        raise CustomerInputError({"form": "この顧客は統合済みのため編集できません。"})
    if customer.version != version:
        raise EditConflict(customer.version)
    clean, errors = _validate(form, stored_flags=customer.flags or {}, today=today)
    purpose = purpose.strip()
    if len(purpose) > PURPOSE_LIMIT:
        errors["purpose"] = f"更新目的は{PURPOSE_LIMIT}文字以内で入力してください。"
    if errors:
        raise CustomerInputError(errors)
    with_karte = form.karte is not None
    before = _stored_values(customer, with_karte=with_karte)
    after = _history_values(
        clean.columns,
        [(e164, kind, label) for _raw, e164, kind, label in clean.phones],
        clean.emails,
        clean.flags,
    )
    changes = {
        key: [before[key], after[key]]
        for key in FIELD_ORDER
        if key in after and before[key] != after[key]
    }
    if not changes:
        return {}
    _apply(customer, clean)
    try:
        await session.flush()
    except StaleDataError:
        raise EditConflict(None) from None
    await record(
        session,
        action="update",
        entity="customer",
        entity_id=customer.id,
        staff_id=staff_id,
        changes=changes,
        purpose=purpose,
        ip=ip,
    )
    return changes
