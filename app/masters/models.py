"""Masters (マスタ): ranks, ads, product categories, products, carriers, shipping rates, sets,
companions, cancel reasons, campaigns (with what they did to orders and the presents sent) and
surveys."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class Rank(Base):
    """ランクマスタ: the best rank whose thresholds a customer meets applies."""

    __tablename__ = "ranks"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(32))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    min_orders: Mapped[int] = mapped_column(Integer, default=0)
    min_amount: Mapped[int] = mapped_column(Integer, default=0)
    max_recency_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Ad(Base):
    """広告マスタ: the medium a customer came from, e.g. 801 ○○新聞."""

    __tablename__ = "ads"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    medium: Mapped[str] = mapped_column(String(32), default="")
    starts_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    cost: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ProductCategory(Base):
    """商品分類マスタ."""

    __tablename__ = "product_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Product(Base):
    """商品マスタ. Prices are tax-exclusive integer yen."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    kana: Mapped[str] = mapped_column(String(200), default="")
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("product_categories.id"), nullable=True
    )
    price: Mapped[int] = mapped_column(Integer)
    cost: Mapped[int] = mapped_column(Integer, default=0)
    tax_class: Mapped[str] = mapped_column(String(16), default="standard")
    subscribable: Mapped[bool] = mapped_column(Boolean, default=False)
    is_present: Mapped[bool] = mapped_column(Boolean, default=False)
    sale_from: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    sale_to: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Carrier(Base):
    """配送会社 (ヤマト運輸, 佐川急便 …)."""

    __tablename__ = "carriers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ShipOrigin(Base):
    """発送元地区: where orders ship from (a warehouse's region). Order entry offers the active
    ones, the first by 表示順 chosen; with none, the ``[orders] origin_region`` setting."""

    __tablename__ = "ship_origins"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(16))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ShippingRate(Base):
    """送付先・送料マスタ: fee, COD fee and lead days per destination prefecture and carrier."""

    __tablename__ = "shipping_rates"
    __table_args__ = (UniqueConstraint("carrier_id", "prefecture"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"))
    prefecture: Mapped[str] = mapped_column(String(8))
    region: Mapped[str] = mapped_column(String(16), default="")
    fee: Mapped[int] = mapped_column(Integer)
    cod_fee: Mapped[int] = mapped_column(Integer, default=330)
    lead_days: Mapped[int] = mapped_column(Integer, default=1)


class SetItem(Base):
    """セット商品マスタ: a set product is made of these products and quantities; order entry
    expands a set into its parts."""

    __tablename__ = "product_set_items"
    __table_args__ = (UniqueConstraint("set_product_id", "component_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    set_product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    component_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=1)


class Companion(Base):
    """同梱: when ``product_id`` is bought, ``companion_id`` always ships with it."""

    __tablename__ = "product_companions"
    __table_args__ = (UniqueConstraint("product_id", "companion_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    companion_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=1)


class CancelReason(Base):
    """解約(返品)理由マスタ: why a subscription was cancelled or goods returned."""

    __tablename__ = "cancel_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(8), default="both")  # cancel / return / both
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


CAMPAIGN_KINDS = {
    "free_shipping": "期間限定送料無料",
    "new_customer": "新規顧客値引き",
    "present": "購入プレゼント同梱",
    "rank_discount": "ランク割引",
}


class Campaign(Base):
    """キャンペーン管理 (X7, R4): a pricing rule applied automatically in order entry while
    it is active and ``starts_on <= 受付日 <= ends_on`` (either end may be open).

    * ``free_shipping`` — no shipping fee (COD fee still charged);
    * ``new_customer`` — ``discount_amount`` yen off for a customer with no previous order;
    * ``present`` — when ``product_id`` is bought, ``present_quantity`` × ``present_product_id``
      ships with the order as a 0-yen line and is recorded as a :class:`Present`;
    * ``rank_discount`` — for customers of ``rank_id``: ``discount_amount`` yen, or
      ``discount_percent`` % of the 商品金額, off.

    Every kind applies only when the 商品金額 is at least ``min_subtotal``.
    """

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    starts_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    min_subtotal: Mapped[int] = mapped_column(Integer, default=0)
    discount_amount: Mapped[int] = mapped_column(Integer, default=0)
    discount_percent: Mapped[int] = mapped_column(Integer, default=0)
    rank_id: Mapped[int | None] = mapped_column(ForeignKey("ranks.id"), nullable=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), nullable=True)
    present_product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), nullable=True)
    present_quantity: Mapped[int] = mapped_column(Integer, default=1)
    note: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OrderCampaign(Base):
    """A campaign applied to an order, as it was applied: its name, what it did and how many
    yen it took off (shipping waived or discount; 0 for a present)."""

    __tablename__ = "order_campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    effect: Mapped[str] = mapped_column(String(200), default="")
    amount: Mapped[int] = mapped_column(Integer, default=0)


class Present(Base):
    """プレゼント履歴 (H6): a present sent to a customer with an order or a campaign."""

    __tablename__ = "presents"
    __table_args__ = (Index("ix_presents_customer_given", "customer_id", "given_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), nullable=True, index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), nullable=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    product_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    given_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Survey(Base):
    """アンケートマスタ (X10): a questionnaire read to customers, with a period."""

    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    starts_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


SURVEY_ANSWER_KINDS = {"single": "単一選択", "multi": "複数選択", "text": "自由記述"}


class SurveyQuestion(Base):
    """One question of a survey: the wording to read and how it is answered."""

    __tablename__ = "survey_questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text)
    answer_kind: Mapped[str] = mapped_column(String(8), default="single")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SurveyChoice(Base):
    """An answer choice of a question."""

    __tablename__ = "survey_choices"
    __table_args__ = (UniqueConstraint("question_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_questions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
