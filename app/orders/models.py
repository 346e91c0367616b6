"""Orders (受注) and their lines. Money is integer yen."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, UTCDateTime, utcnow

# Orders in these statuses are void: they count for no total, no rank and no campaign.
VOID_STATUSES = ("cancelled", "returned")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer_received", "customer_id", "received_on"),
        # 受注一覧's order (newest 受付日, then entry time): its page is read off the index.
        Index("ix_orders_received", "received_on", "created_at", "id"),
        # A subscription makes exactly one order per due date, enforced by the database.
        UniqueConstraint("subscription_id", "subscription_due_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    ship_to_id: Mapped[int | None] = mapped_column(ForeignKey("ship_tos.id"), nullable=True)
    # Where it was sent, as it was when the order was taken (an address edited later, or a
    # customer who moves, does not rewrite the order).
    ship_name: Mapped[str] = mapped_column(String(100), default="")
    ship_postcode: Mapped[str] = mapped_column(String(8), default="")
    ship_prefecture: Mapped[str] = mapped_column(String(8), default="")
    ship_address: Mapped[str] = mapped_column(String(400), default="")
    slip_type: Mapped[str] = mapped_column(
        String(16), default="normal"
    )  # 伝票区分 normal/subscription
    carrier_id: Mapped[int | None] = mapped_column(ForeignKey("carriers.id"), nullable=True)
    origin_region: Mapped[str] = mapped_column(String(16), default="")  # 発送元地区
    dest_region: Mapped[str] = mapped_column(String(16), default="")  # 発送先地区
    ad_id: Mapped[int | None] = mapped_column(ForeignKey("ads.id"), nullable=True)
    category: Mapped[str] = mapped_column(String(16), default="")  # 区分
    allocation: Mapped[str] = mapped_column(String(16), default="")  # 振分区分
    received_on: Mapped[dt.date] = mapped_column(Date)  # 受付日
    ship_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)  # 出荷予定日
    deliver_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)  # お届け予定日
    time_slot: Mapped[str] = mapped_column(String(8), default="")
    payment_method: Mapped[str] = mapped_column(String(16), default="cod")
    payment_status: Mapped[str] = mapped_column(String(16), default="unpaid")  # 入金 未/済/返
    subtotal: Mapped[int] = mapped_column(Integer, default=0)
    discount: Mapped[int] = mapped_column(Integer, default=0)
    shipping_fee: Mapped[int] = mapped_column(Integer, default=0)
    cod_fee: Mapped[int] = mapped_column(Integer, default=0)
    tax: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="confirmed")
    tracking_number: Mapped[str] = mapped_column(String(32), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), nullable=True)
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id"), nullable=True, index=True
    )
    subscription_due_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        order_by="OrderLine.position", cascade="all, delete-orphan"
    )


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), nullable=True)
    product_code: Mapped[str] = mapped_column(String(32))
    product_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Integer)
    tax_class: Mapped[str] = mapped_column(String(16), default="standard")
    is_present: Mapped[bool] = mapped_column(default=False)
    # A part of a set product or a companion (同梱) points at the position of the line it
    # came from; such lines carry no price of their own.
    parent_position: Mapped[int | None] = mapped_column(Integer, nullable=True)
