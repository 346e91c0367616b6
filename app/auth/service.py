"""Staff accounts: password hashing, log-in with lock-out, creation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.models import Role, Staff
from app.db import utcnow

_hasher = PasswordHasher()
# Verified against when the log-in is unknown, so both paths cost the same.
_DUMMY_HASH = _hasher.hash("yebisu-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass
class LoginResult:
    staff: Staff | None
    error: str = ""


async def authenticate(
    session: AsyncSession,
    *,
    login: str,
    password: str,
    max_failed: int,
    lockout_minutes: int,
    ip: str = "",
) -> LoginResult:
    """Check a log-in; count failures and lock the account after ``max_failed`` of them."""
    staff = await session.scalar(select(Staff).where(Staff.login == login.strip()))
    now = utcnow()
    if staff is None or not staff.active:
        verify_password(_DUMMY_HASH, password)
        await record(session, action="login_failed", entity="staff", purpose=login[:64], ip=ip)
        return LoginResult(None, "ログインIDまたはパスワードが違います。")
    if staff.locked_until is not None and staff.locked_until > now:
        await record(session, action="login_locked", entity="staff", entity_id=staff.id, ip=ip)
        minutes = max(1, int((staff.locked_until - now).total_seconds() // 60) + 1)
        return LoginResult(
            None,
            f"ログインに続けて失敗したため、このアカウントはロックされています。"
            f"約{minutes}分後にもう一度お試しください。",
        )
    if not verify_password(staff.password_hash, password):
        staff.failed_logins += 1
        if staff.failed_logins >= max_failed:
            staff.locked_until = now + dt.timedelta(minutes=lockout_minutes)
            staff.failed_logins = 0
            await record(session, action="locked", entity="staff", entity_id=staff.id, ip=ip)
            return LoginResult(
                None,
                f"ログインに{max_failed}回続けて失敗したため、アカウントを"
                f"{lockout_minutes}分間ロックしました。",
            )
        await record(session, action="login_failed", entity="staff", entity_id=staff.id, ip=ip)
        return LoginResult(None, "ログインIDまたはパスワードが違います。")
    staff.failed_logins = 0
    staff.locked_until = None
    if _hasher.check_needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    await record(
        session, action="login", entity="staff", entity_id=staff.id, staff_id=staff.id, ip=ip
    )
    return LoginResult(staff)


async def create_staff(
    session: AsyncSession,
    *,
    login: str,
    name: str,
    password: str,
    role: Role | str = Role.operator,
    extension: str = "",
    line: str = "main",
    name_kana: str = "",
) -> Staff:
    """Create a staff member; raises ValueError with a Japanese message on bad input."""
    login = login.strip()
    if not login:
        raise ValueError("ログインIDを入力してください。")
    if len(password) < 8:
        raise ValueError("パスワードは8文字以上にしてください。")
    try:
        role = Role(role)
    except ValueError:
        raise ValueError(f"役割は {', '.join(r.value for r in Role)} のいずれかです。") from None
    if await session.scalar(select(Staff.id).where(Staff.login == login)) is not None:
        raise ValueError(f"ログインID {login} は既に使われています。")
    staff = Staff(
        login=login,
        name=name or login,
        name_kana=name_kana,
        role=role.value,
        extension=extension,
        line=line,
        password_hash=hash_password(password),
    )
    session.add(staff)
    await session.flush()
    await record(
        session,
        action="create",
        entity="staff",
        entity_id=staff.id,
        changes={"login": login, "role": role.value},
    )
    return staff
