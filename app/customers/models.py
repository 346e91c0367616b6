"""Customers with many phones, e-mail addresses and ship-to addresses."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow

# Search keys compare byte-wise on PostgreSQL ("C" collation), so a prefix LIKE can use a plain
# b-tree index whatever the database's collation is.
SEARCH_KEY = String(100).with_variant(String(100, collation="C"), "postgresql")

# A phone number's kind (customer_phones.kind) and its label.
PHONE_KINDS = {
    "home": "自宅",
    "mobile": "携帯",
    "office": "勤務先",
    "fax": "FAX",
    "other": "その他",
}


class Customer(Base):
    __tablename__ = "customers"
    # Prefix search: ``key LIKE 'x%' ORDER BY key, id LIMIT n`` walks these indexes.
    __table_args__ = (
        Index("ix_customers_name_key", "name_key", "id"),
        Index("ix_customers_kana_key", "kana_key", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kana: Mapped[str] = mapped_column(String(100), default="")
    # Normalised search keys: name without spaces; kana as full-width katakana without spaces.
    name_key: Mapped[str] = mapped_column(SEARCH_KEY, default="")
    kana_key: Mapped[str] = mapped_column(SEARCH_KEY, default="")
    postcode: Mapped[str] = mapped_column(String(8), default="")
    prefecture: Mapped[str] = mapped_column(String(8), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    street: Mapped[str] = mapped_column(String(200), default="")
    building: Mapped[str] = mapped_column(String(200), default="")
    company1: Mapped[str] = mapped_column(String(200), default="")
    company2: Mapped[str] = mapped_column(String(200), default="")
    birth_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    gender: Mapped[str] = mapped_column(String(1), default="")  # M / F / "" (unknown)
    dm_required: Mapped[bool] = mapped_column(Boolean, default=True)
    no_call: Mapped[bool] = mapped_column(Boolean, default=False)  # 電話不可
    rank_id: Mapped[int | None] = mapped_column(ForeignKey("ranks.id"), nullable=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    ad_id: Mapped[int | None] = mapped_column(ForeignKey("ads.id"), nullable=True)
    alert: Mapped[str] = mapped_column(Text, default="")
    karte: Mapped[str] = mapped_column(Text, default="")
    memo: Mapped[str] = mapped_column(Text, default="")
    flags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    phones: Mapped[list[CustomerPhone]] = relationship(
        back_populates="customer", order_by="CustomerPhone.position", cascade="all, delete-orphan"
    )
    emails: Mapped[list[CustomerEmail]] = relationship(
        order_by="CustomerEmail.position", cascade="all, delete-orphan"
    )
    ship_tos: Mapped[list[ShipTo]] = relationship(cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (optimistic locking)


class CustomerPhone(Base):
    """One of a customer's phones; several customers may share one (a family's home phone)."""

    __tablename__ = "customer_phones"
    __table_args__ = (Index("ix_customer_phones_customer", "customer_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    raw: Mapped[str] = mapped_column(String(32))
    e164: Mapped[str] = mapped_column(String(20), index=True)
    last8: Mapped[str] = mapped_column(String(8), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="home")  # home/mobile/office/fax/other
    label: Mapped[str] = mapped_column(String(64), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)

    customer: Mapped[Customer] = relationship(back_populates="phones")


class CustomerEmail(Base):
    __tablename__ = "customer_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(String(254), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class ShipTo(Base):
    """送付先: an address an order may ship to (home, office, a gift recipient)."""

    __tablename__ = "ship_tos"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(100))
    kana: Mapped[str] = mapped_column(String(100), default="")
    postcode: Mapped[str] = mapped_column(String(8), default="")
    prefecture: Mapped[str] = mapped_column(String(8), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    street: Mapped[str] = mapped_column(String(200), default="")
    building: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
