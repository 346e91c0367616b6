"""Masters (マスタ): ranks, ads, product categories, products, carriers, shipping rates."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


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
