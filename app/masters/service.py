"""Generic master maintenance: list with search and paging, validate, create, update,
retire/reactivate (rows with an ``active`` flag are never deleted) and delete (only rows of
masters without one, which no order refers to). Every write is audited."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.service import (
    ANY_EXTENSION,
    UNUSABLE_PASSWORD,
    extension_list,
    hash_password,
)
from app.masters.fields import Field, MasterSpec, Refs, format_value, parse_value
from app.masters.registry import BY_KEY

PER_PAGE = 50
STATUSES = (("active", "有効のみ"), ("all", "すべて"), ("retired", "使用停止のみ"))


@dataclass
class Page:
    rows: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.per_page)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def load_refs(session: AsyncSession, spec: MasterSpec) -> Refs:
    """Code ↔ id of every row of the masters ``spec`` refers to."""
    refs = Refs()
    for ref in {f.ref for f in spec.fields if f.kind == "ref"}:
        target = BY_KEY[ref]
        model = target.model
        rows = await session.execute(
            select(model.id, model.code, getattr(model, target.display)).order_by(model.id)
        )
        refs.by_code[ref] = {}
        refs.by_id[ref] = {}
        for id_, code, name in rows:
            refs.by_code[ref][str(code)] = int(id_)
            refs.by_id[ref][int(id_)] = (str(code), str(name))
    return refs


async def list_rows(
    session: AsyncSession,
    spec: MasterSpec,
    *,
    q: str = "",
    status: str = "active",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Page:
    """One page of the master's rows matching the free text ``q`` (any searchable field, or the
    code of a referenced row) and the status (有効のみ / すべて / 使用停止のみ)."""
    model = spec.model
    conds: list[Any] = []
    if spec.retire and status == "active":
        conds.append(model.active.is_(True))
    elif spec.retire and status == "retired":
        conds.append(model.active.is_(False))
    text = q.strip()
    if text:
        like = f"%{_escape_like(text)}%"
        alts: list[Any] = [
            cast(getattr(model, name), String).like(like, escape="\\") for name in spec.search
        ]
        refs = await load_refs(session, spec)
        for f in spec.fields:
            if f.kind == "ref":
                ids = [
                    id_
                    for id_, (code, name) in refs.by_id.get(f.ref, {}).items()
                    if text in code or text in name
                ]
                if ids:
                    alts.append(getattr(model, f.name).in_(ids))
        conds.append(or_(*alts) if alts else and_(False))  # type: ignore[arg-type]
    total = int(await session.scalar(select(func.count()).select_from(model).where(*conds)) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = await session.scalars(
        select(model)
        .where(*conds)
        .order_by(*(getattr(model, name) for name in spec.order_by))
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return Page(rows=list(rows), total=total, page=page, per_page=per_page)


def form_values(spec: MasterSpec, row: Any | None, refs: Refs) -> dict[str, str]:
    """The text of each field as a form shows it (a new row: the defaults)."""
    out: dict[str, str] = {}
    for f in spec.fields:
        value = getattr(row, f.name) if row is not None and f.kind != "password" else f.default
        out[f.name] = format_value(f, value, refs)
    return out


async def validate(
    session: AsyncSession,
    spec: MasterSpec,
    raw: dict[str, str],
    *,
    refs: Refs,
    row: Any | None,
    fields: tuple[Field, ...] | None = None,
    unique: bool = True,
    actor_admin: bool = True,
    actor_id: int | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse ``raw`` (field name → text) into model values; messages per field.

    ``fields`` limits the check to the columns given (a CSV without some columns updates only
    the ones it has); a new row is checked with every field. ``unique`` checks that no other
    row has the same key. ``actor_admin``: whether the person saving is an administrator
    (only they may give the admin role or change an administrator's log-in); ``actor_id``:
    their staff id (nobody retires their own log-in).
    """
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    given = fields if fields is not None else spec.fields
    for f in given:
        value, message = parse_value(f, raw.get(f.name, ""), refs)
        if message:
            errors[f.name] = message
        else:
            values[f.name] = value
    has_password = any(f.kind == "password" for f in given)
    if spec.key == "staff" and has_password and raw.get("password"):
        message = _password_rule(row=row, actor_admin=actor_admin, actor_id=actor_id)
        if message:
            errors["password"] = message
            values.pop("password", None)
    needs_password = row is None and has_password and actor_admin
    if needs_password and not values.get("password") and "password" not in errors:
        errors["password"] = "パスワードを入力してください（8文字以上）。"
    if spec.key == "staff" and values.get("allowed_extensions"):
        wrong = [
            e
            for e in extension_list(values["allowed_extensions"])
            if e != ANY_EXTENSION and not (e.isascii() and e.isalnum())
        ]
        if wrong:
            errors.setdefault(
                "allowed_extensions",
                f"内線は半角の英数字をカンマで区切って入力してください（{wrong[0]}）。",
            )
        else:
            values["allowed_extensions"] = ",".join(extension_list(values["allowed_extensions"]))
    # cross-field rules see the row as it will be
    merged = {
        f.name: getattr(row, f.name)
        for f in spec.fields
        if row is not None and f.kind != "password"
    }
    merged.update(values)
    if spec.check is not None:  # every problem at once; a field's own message comes first
        for name, message in spec.check(merged).items():
            errors.setdefault(name, message)
    if spec.key == "staff":
        if not actor_admin:
            for name, message in _binding_rule(row=row, values=values).items():
                errors.setdefault(name, message)
                values.pop(name, None)
        message = await _staff_rule(
            session, row=row, merged=merged, actor_admin=actor_admin, actor_id=actor_id
        )
        if message:
            errors.setdefault("active" if message == SELF_RETIRE else "role", message)
    if unique and not any(k in errors for k in spec.keys):
        key = {k: merged.get(k) for k in spec.keys}
        if all(v is not None and v != "" for v in key.values()):
            stmt = select(spec.model.id).where(
                *(getattr(spec.model, k) == v for k, v in key.items())
            )
            if row is not None:
                stmt = stmt.where(spec.model.id != row.id)
            if await session.scalar(stmt.limit(1)) is not None:
                labels = "・".join(spec.field(k).label for k in spec.keys)
                errors[spec.keys[-1]] = f"この{labels}は既に登録されています。"
    return values, errors


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def apply_values(spec: MasterSpec, row: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Set the values on the row; returns the changes as {field: [old, new]}.

    A password set here (担当者マスタ, by an administrator) must be changed by its owner at
    the next log-in; a log-in made without one cannot log in until an administrator sets it."""
    changes: dict[str, Any] = {}
    for name, value in values.items():
        f = spec.field(name)
        if f.kind == "password":
            if value:
                row.password_hash = hash_password(value)
                row.must_change_password = True
                changes["password"] = "（変更）"
            continue
        old = getattr(row, name, None)
        if old != value:
            setattr(row, name, value)
            changes[name] = [_jsonable(old), _jsonable(value)]
    if spec.key == "staff" and not getattr(row, "password_hash", None):
        row.password_hash = UNUSABLE_PASSWORD
    return changes


async def staff_changed(
    session: AsyncSession,
    spec: MasterSpec,
    *,
    row: Any,
    changes: dict[str, Any],
    created: bool,
    staff_id: int | None,
) -> None:
    """担当者マスタ after a write: a password reset is audited, and a reset, a role change,
    retirement, a changed 内線, or 使える内線 that no longer allow the extension they are bound
    to end every session of that staff member (their open pages close within a second of the
    commit, on every app process; they log in again under the new rules)."""
    if spec.key != "staff" or created:
        return
    from app.auth.sessions import end_sessions

    if "password" in changes:
        await record(
            session,
            action="password_reset",
            entity="staff",
            entity_id=row.id,
            staff_id=staff_id,
        )
    retired = "active" in changes and not row.active
    if (
        "password" in changes
        or "role" in changes
        or retired
        or "extension" in changes
        or ("allowed_extensions" in changes and not await _binding_still_allowed(session, row))
    ):
        await end_sessions(session, staff_id=row.id)


async def _binding_still_allowed(session: AsyncSession, row: Any) -> bool:
    """Whether the extension this staff member is bound to now (at log-in) is still one
    their log-in may take."""
    from app.auth.service import may_bind
    from app.calls.models import Presence

    presence = await session.get(Presence, row.id)
    return presence is None or may_bind(row, presence.extension)


ADMIN_ONLY = "管理者のログインと管理者の権限は、管理者だけが登録・変更できます。"
PASSWORD_ADMIN_ONLY = "パスワードの設定・再設定は管理者だけができます。"
OWN_PASSWORD = "自分のパスワードは「パスワード変更」画面で変更してください。"


def _password_rule(*, row: Any | None, actor_admin: bool, actor_id: int | None) -> str:
    """Only an administrator sets a password here, and not their own (that is a change,
    with the current password, on the パスワード変更 screen)."""
    if not actor_admin:
        return PASSWORD_ADMIN_ONLY
    if row is not None and actor_id is not None and row.id == actor_id:
        return OWN_PASSWORD
    return ""


EXTENSIONS_ADMIN_ONLY = "内線と使える内線は管理者だけが変更できます。"
ALLOWED_ADMIN_ONLY = "使える内線は管理者だけが設定できます。"
ROLE_ADMIN_ONLY = "役割は管理者だけが変更できます。"


def _binding_rule(*, row: Any | None, values: dict[str, Any]) -> dict[str, str]:
    """What a non-administrator may not do in 担当者マスタ (messages per field): change the
    役割, 内線 or 使える内線 of an existing log-in (their own included: they decide which
    extensions' pops, with customer data, a log-in receives), nor give a new log-in any
    使える内線 (it gets its registered 内線 only, until an administrator widens it)."""
    errors: dict[str, str] = {}
    if row is None:
        if values.get("allowed_extensions"):
            errors["allowed_extensions"] = ALLOWED_ADMIN_ONLY
        return errors
    for name, message in (
        ("role", ROLE_ADMIN_ONLY),
        ("extension", EXTENSIONS_ADMIN_ONLY),
        ("allowed_extensions", EXTENSIONS_ADMIN_ONLY),
    ):
        if name in values and (values[name] or "") != (getattr(row, name) or ""):
            errors[name] = message
    return errors


SELF_RETIRE = "自分のアカウントは使用停止にできません。"
LAST_ADMIN = "有効な管理者が他にいないため、この管理者の権限は外せません（使用停止もできません）。"


async def _staff_rule(
    session: AsyncSession,
    *,
    row: Any | None,
    merged: dict[str, Any],
    actor_admin: bool,
    actor_id: int | None,
) -> str:
    """担当者マスタ: nobody retires their own log-in; administrators are made and changed by
    administrators only, and the last active administrator stays one (else nobody could open
    管理 again)."""
    from app.auth.models import Staff

    if row is not None and row.id == actor_id and not merged.get("active", True):
        return SELF_RETIRE

    row_admin = row is not None and row.role == "admin"
    if not actor_admin and (merged.get("role") == "admin" or row_admin):
        return ADMIN_ONLY
    stays = merged.get("role") == "admin" and merged.get("active", True)
    if row is not None and row_admin and row.active and not stays:
        others: int | None = await session.scalar(
            select(func.count(Staff.id)).where(
                Staff.role == "admin", Staff.active.is_(True), Staff.id != row.id
            )
        )
        if not others:
            return LAST_ADMIN
    return ""


async def save_row(
    session: AsyncSession,
    spec: MasterSpec,
    *,
    row_id: int | None,
    raw: dict[str, str],
    staff_id: int | None,
    actor_admin: bool = True,
) -> tuple[Any | None, dict[str, str]]:
    """Create (``row_id`` None) or update one row from the form; nothing is written when
    there are messages. Returns the row (None on errors) and the messages."""
    refs = await load_refs(session, spec)
    row = await session.get(spec.model, row_id) if row_id is not None else None
    if row_id is not None and row is None:
        raise LookupError(row_id)
    # the form has every field but 有効 (a check box left unticked posts nothing)
    values, errors = await validate(
        session,
        spec,
        raw,
        refs=refs,
        row=row,
        fields=spec.form_fields,
        actor_admin=actor_admin,
        actor_id=staff_id,
    )
    if errors:
        return None, errors
    creating = row is None
    if row is None:
        row = spec.model()
        for f in spec.fields:
            if f.kind != "password" and f.name not in values:
                setattr(row, f.name, f.default)
        session.add(row)
    changes = apply_values(spec, row, values)
    await session.flush()
    await record(
        session,
        action="master_create" if creating else "master_update",
        entity=spec.key,
        entity_id=row.id,
        staff_id=staff_id,
        changes=changes,
    )
    await staff_changed(
        session, spec, row=row, changes=changes, created=creating, staff_id=staff_id
    )
    return row, {}


class MasterRefused(ValueError):
    """A change the rules refuse (the message says why)."""


async def set_active(
    session: AsyncSession,
    spec: MasterSpec,
    *,
    row_id: int,
    active: bool,
    staff_id: int | None,
    actor_admin: bool = True,
) -> Any:
    """使用停止 (retire) or 使用再開 (reactivate) a row; it stays for what refers to it.
    Raises :class:`MasterRefused` for an administrator's log-in changed by a non-admin, or
    the last administrator retired."""
    row = await session.get(spec.model, row_id)
    if row is None or not spec.retire:
        raise LookupError(row_id)
    if spec.key == "staff":
        merged = {"role": row.role, "active": active}
        message = await _staff_rule(
            session, row=row, merged=merged, actor_admin=actor_admin, actor_id=staff_id
        )
        if message:
            raise MasterRefused(message)
    if row.active != active:
        row.active = active
        await record(
            session,
            action="master_reactivate" if active else "master_retire",
            entity=spec.key,
            entity_id=row.id,
            staff_id=staff_id,
        )
        await staff_changed(
            session,
            spec,
            row=row,
            changes={"active": [not active, active]},
            created=False,
            staff_id=staff_id,
        )
    return row


async def delete_row(
    session: AsyncSession, spec: MasterSpec, *, row_id: int, staff_id: int | None
) -> None:
    """Delete a row of a master without an ``active`` flag (shipping rates, set contents,
    companions): nothing else refers to those rows."""
    if spec.retire:
        raise ValueError("使用停止してください（削除はできません）。")
    row = await session.get(spec.model, row_id)
    if row is None:
        raise LookupError(row_id)
    refs = await load_refs(session, spec)
    await record(
        session,
        action="master_delete",
        entity=spec.key,
        entity_id=row.id,
        staff_id=staff_id,
        changes=form_values(spec, row, refs),
    )
    await session.delete(row)
    await session.flush()
