from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    operator = "operator"
    supervisor = "supervisor"
    backoffice = "backoffice"
    admin = "admin"


ROLE_LABELS = {
    Role.operator: "オペレータ",
    Role.supervisor: "スーパーバイザー",
    Role.backoffice: "バックオフィス",
    Role.admin: "管理者",
}


class Staff(Base):
    """担当者: a person who logs in (operator, supervisor, back office, admin)."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    name_kana: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[str] = mapped_column(String(16), default=Role.operator.value)
    extension: Mapped[str] = mapped_column(String(32), default="")
    line: Mapped[str] = mapped_column(String(32), default="main")
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Extensions this log-in may bind at log-in besides its own (comma-separated; "*" = any).
    allowed_extensions: Mapped[str] = mapped_column(String(255), default="", server_default="")
    # Set by an administrator's reset: every page asks for a new password until it is changed.
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )


class UserSession(Base):
    """A server-side session: the cookie carries only a random id, this row holds its SHA-256
    (a copy of the table gives no live cookie), who is logged in and the session's data."""

    __tablename__ = "sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), nullable=True, index=True
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
