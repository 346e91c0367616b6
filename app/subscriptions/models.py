"""定期 (subscriptions). The subscription issue builds the screens and the daily run."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_status_next", "status", "next_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    start_month: Mapped[dt.date] = mapped_column(Date)  # first day of the start month
    interval_unit: Mapped[str] = mapped_column(String(8), default="month")  # month / week
    interval_n: Mapped[int] = mapped_column(Integer, default=1)
    day_of_month: Mapped[int] = mapped_column(Integer, default=10)
    next_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active/paused/cancelled
    paused_until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    ship_to_id: Mapped[int | None] = mapped_column(ForeignKey("ship_tos.id"), nullable=True)
    carrier_id: Mapped[int | None] = mapped_column(ForeignKey("carriers.id"), nullable=True)
    payment_method: Mapped[str] = mapped_column(String(16), default="cod")
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    cancel_reason_id: Mapped[int | None] = mapped_column(
        ForeignKey("cancel_reasons.id"), nullable=True
    )
    # Optimistic locking: a change made on a screen that showed an older version is refused.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    items: Mapped[list[SubscriptionItem]] = relationship(cascade="all, delete-orphan")


class SubscriptionItem(Base):
    __tablename__ = "subscription_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")
