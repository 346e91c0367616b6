"""Staff accounts: password hashing, log-in with lock-out, creation, the extension a log-in
binds (one holder at a time), password changes and resets."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.models import Role, Staff
from app.db import utcnow
from app.inputs import normalise

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
    audit_success: bool = True,
) -> LoginResult:
    """Check a log-in; count failures and lock the account after ``max_failed`` of them.
    ``audit_success=False``: the caller records the log-in itself (after its own checks)."""
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
    if audit_success:
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
    allowed_extensions: str = "",
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
        allowed_extensions=allowed_extensions,
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


# --- the extension a log-in binds ------------------------------------------------------------

ANY_EXTENSION = "*"
# A password hash no password matches (a log-in made without one: an administrator sets it).
UNUSABLE_PASSWORD = "!"


def extension_list(value: str) -> list[str]:
    """The extensions of a 使える内線 field: comma (or 、 or space) separated."""
    text = normalise(value)
    return [p for p in re.split(r"[,\s、]+", text) if p]


def may_bind(staff: Staff, extension: str) -> bool:
    """Whether this log-in may take ``extension``: none at all, its own registered one, one of
    its 使える内線, or any when that field is ``*``."""
    if not extension or extension == staff.extension:
        return True
    allowed = extension_list(staff.allowed_extensions)
    return ANY_EXTENSION in allowed or extension in allowed


async def extension_holder(
    session: AsyncSession, *, staff_id: int, extension: str, idle_s: int
) -> Staff | None:
    """Another active staff member holding ``extension`` now (bound at log-in, with a live
    session), or None."""
    from app.auth.sessions import live_staff_ids
    from app.calls.models import Presence

    if not extension:
        return None
    others = list(
        (
            await session.scalars(
                select(Presence.staff_id).where(
                    Presence.extension == extension,
                    Presence.state != "offline",
                    Presence.staff_id != staff_id,
                )
            )
        ).all()
    )
    live = await live_staff_ids(session, others, idle_s=idle_s)
    for other in sorted(live):
        holder = await session.get(Staff, other)
        if holder is not None and holder.active:
            return holder
    return None


async def bind_extension(
    session: AsyncSession,
    *,
    staff: Staff,
    extension: str,
    taken_from: Staff | None = None,
    ip: str = "",
) -> None:
    """Bind ``extension`` to ``staff`` at log-in: every other binding of it ends (so calls to
    it pop for this one staff member only). ``taken_from``: the holder this log-in took it
    over from (audited; their open pages stop showing it)."""
    from app.auth.sessions import set_session_extension
    from app.calls.models import Presence
    from app.calls.presence import set_presence

    if extension:
        others = (
            await session.scalars(
                select(Presence).where(
                    Presence.extension == extension, Presence.staff_id != staff.id
                )
            )
        ).all()
        for other in others:
            other.extension = ""
        if taken_from is not None:
            await set_session_extension(session, staff_id=taken_from.id, extension="")
            await record(
                session,
                action="extension_takeover",
                entity="staff",
                entity_id=taken_from.id,
                staff_id=staff.id,
                changes={"extension": extension, "from": taken_from.login, "to": staff.login},
                ip=ip,
            )
    await set_presence(
        session,
        staff_id=staff.id,
        state="available" if staff.role == "operator" else "away",
        extension=extension,
        line=staff.line,
    )


# --- passwords -------------------------------------------------------------------------------

MIN_PASSWORD = 8


def password_problem(password: str) -> str:
    """A Japanese message when ``password`` is not acceptable, else ""."""
    if len(password) < MIN_PASSWORD:
        return f"パスワードは{MIN_PASSWORD}文字以上にしてください。"
    if len(password) > 256:
        return "パスワードは256文字以内にしてください。"
    return ""


async def change_own_password(
    session: AsyncSession,
    *,
    staff: Staff,
    current: str,
    new: str,
    again: str,
    keep_session: str | None,
    ip: str = "",
) -> dict[str, str]:
    """A staff member changes their own password (current one, new one twice). On success
    their other sessions end and the change is audited; returns messages per field otherwise
    (nothing written)."""
    from app.auth.sessions import end_sessions

    errors: dict[str, str] = {}
    if not current:
        errors["current"] = "今のパスワードを入力してください。"
    elif not verify_password(staff.password_hash, current):
        errors["current"] = "今のパスワードが違います。"
    problem = password_problem(new)
    if problem:
        errors["new"] = problem
    elif new != again:
        errors["again"] = "確認のため、新しいパスワードを同じように2回入力してください。"
    elif current and new == current:
        errors["new"] = "今のパスワードと違うパスワードにしてください。"
    if errors:
        if "current" in errors and current:
            await record(
                session,
                action="password_change_failed",
                entity="staff",
                entity_id=staff.id,
                staff_id=staff.id,
                ip=ip,
            )
        return errors
    staff.password_hash = hash_password(new)
    staff.must_change_password = False
    await record(
        session,
        action="password_change",
        entity="staff",
        entity_id=staff.id,
        staff_id=staff.id,
        ip=ip,
    )
    await end_sessions(session, staff_id=staff.id, keep=keep_session)
    return {}


async def reset_password(
    session: AsyncSession, *, staff: Staff, password: str, actor_id: int | None
) -> None:
    """An administrator sets another staff member's password: it must be changed at the next
    log-in, every session of theirs ends now, and the reset is audited. (Setting one's own
    password this way is a change, not a reset.)"""
    from app.auth.sessions import end_sessions

    staff.password_hash = hash_password(password)
    own = actor_id is not None and actor_id == staff.id
    staff.must_change_password = not own
    await record(
        session,
        action="password_change" if own else "password_reset",
        entity="staff",
        entity_id=staff.id,
        staff_id=actor_id,
    )
    if staff.id is not None:
        await end_sessions(session, staff_id=staff.id)
