"""Outbound: the per-customer last action of each kind (長期放置顧客一覧) and work lists."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

# Action kinds grouped as the 長期放置顧客一覧 offers them (アクション区分); "any" = 未指定.
ACTION_GROUPS: dict[str, str] = {
    "any": "未指定",
    "call": "電話",
    "dm": "DM",
    "order": "受注",
    "response": "対応",
}

# Result codes of an outbound attempt (stored in actions.result as the label).
RESULTS: dict[str, str] = {
    "connected": "通話",
    "no_answer": "不在",
    "voicemail": "留守電",
    "refused": "拒否",
    "wrong_number": "番号違い",
    "callback": "再コール",
}
# Results that leave the entry to be called again (on the call-back date when given).
RETRY_RESULTS = ("no_answer", "voicemail", "callback")
ENTRY_STATUSES = {
    "pending": "未着手",
    "callback": "再コール待ち",
    "done": "完了",
    "skipped": "対象外",
}


class LastAction(Base):
    """A customer's latest action of one group (call, dm, order, response, any), kept by
    database triggers on ``actions`` and ``customers`` (migration 0006). A customer without an
    action of the group has a row with ``action_id`` NULL and ``last_at`` = registration."""

    __tablename__ = "customer_last_actions"
    __table_args__ = (Index("ix_customer_last_actions_grp_at", "grp", "last_at", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    grp: Mapped[str] = mapped_column(String(8), primary_key=True)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    action_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="")
    order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class OutboundList(Base):
    """架電リスト: customers picked from a dormant list, worked through by operators."""

    __tablename__ = "outbound_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OutboundOperator(Base):
    """An operator assigned to a list."""

    __tablename__ = "outbound_list_operators"

    list_id: Mapped[int] = mapped_column(ForeignKey("outbound_lists.id"), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)


class OutboundEntry(Base):
    """One customer of a list, with the outcome of the attempts so far."""

    __tablename__ = "outbound_entries"
    __table_args__ = (
        UniqueConstraint("list_id", "customer_id"),
        Index("ix_outbound_entries_list_status", "list_id", "status", "position"),
        Index("ix_outbound_entries_status_callback", "status", "callback_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("outbound_lists.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[str] = mapped_column(String(16), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    locked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
