"""Calls (着信・発信) with their lifecycle."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("source", "source_call_id"),
        Index("ix_calls_state_started", "state", "started_at"),
        Index("ix_calls_customer", "customer_id", "started_at"),
        # Today's counts (board) and the call-back queue (board, alerts, 不在着信).
        Index("ix_calls_started", "started_at"),
        Index("ix_calls_callback", "callback_status", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    source_call_id: Mapped[str] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(8), default="in")  # in / out
    line: Mapped[str] = mapped_column(String(32), default="")
    extension: Mapped[str] = mapped_column(String(32), default="")
    caller_raw: Mapped[str] = mapped_column(String(64), default="")
    caller_e164: Mapped[str] = mapped_column(String(20), default="")
    withheld_reason: Mapped[str] = mapped_column(String(16), default="")
    # ringing / answered / ended / missed
    state: Mapped[str] = mapped_column(String(16), default="ringing")
    match_kind: Mapped[str] = mapped_column(String(16), default="")  # exact/partial/many/none
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    callback_status: Mapped[str] = mapped_column(String(16), default="")  # ""/pending/done
    # Staff ids whose screens the call popped on (for closing pops and for reconnecting tabs).
    targets: Mapped[list[int]] = mapped_column(JSON, default=list)


PRESENCE_LABELS = {
    "available": "受付可",
    "on_call": "通話中",
    "after_call": "後処理",
    "away": "離席",
    "offline": "ログオフ",
}


class Presence(Base):
    """An operator's telephony state and the extension bound at log-in (C6)."""

    __tablename__ = "presence"
    __table_args__ = (Index("ix_presence_line_state", "line", "state"),)

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    extension: Mapped[str] = mapped_column(String(32), default="", index=True)
    line: Mapped[str] = mapped_column(String(32), default="main")
    state: Mapped[str] = mapped_column(String(16), default="offline")
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
