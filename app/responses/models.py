"""対応履歴 (responses) and アクション履歴 (actions)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

RESPONSE_CATEGORIES = ["問合せ", "クレーム", "注文", "定期変更", "基本変更", "返品", "その他"]
RESPONSE_CHANNELS = ["電話", "メール", "FAX", "手紙", "Web", "その他"]
ACTION_KINDS = {
    "call_in": "着信",
    "call_out": "電話",
    "dm": "DM",
    "catalog": "カタログ",
    "mail": "メール",
    "order": "受注",
    "response": "対応",
}


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (
        Index("ix_responses_customer_at", "customer_id", "responded_at"),
        Index("ix_responses_at", "responded_at"),
        # Responses left open too long (status alerts, D4): found without reading them all.
        Index("ix_responses_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), nullable=True, index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    responded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    category: Mapped[str] = mapped_column(String(16), default="問合せ")
    channel: Mapped[str] = mapped_column(String(16), default="電話")
    content: Mapped[str] = mapped_column(Text, default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(8), default="done")  # open / done
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Action(Base):
    """An approach to or from the customer, in time order (AC履歴)."""

    __tablename__ = "actions"
    __table_args__ = (
        Index("ix_actions_customer_at", "customer_id", "occurred_at"),
        Index("ix_actions_kind_at", "kind", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    content: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str] = mapped_column(String(16), default="")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), nullable=True, index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), nullable=True)
    amount: Mapped[int] = mapped_column(Integer, default=0)


class Faq(Base):
    """FAQ / model answers (H2, X6), searched while a response is typed."""

    __tablename__ = "faqs"

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(32), default="")
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    keywords: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
