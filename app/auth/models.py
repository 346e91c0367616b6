from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, Integer, String
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
