"""変更履歴 (M7): who changed what about a customer, when and why — read from the audit log,
together with views of the カルテ, registration, merges and ship-to changes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditLog
from app.auth.models import Staff
from app.customers.birthdate import wareki
from app.customers.editing import FIELD_LABELS, GENDERS
from app.customers.shiptos import SHIP_TO_LABELS

ACTION_LABELS: dict[str, str] = {
    "create": "新規登録",
    "update": "顧客情報の変更",
    "view_karte": "カルテ閲覧",
    "merge": "統合",
    "merged": "統合",
    "merge_into": "統合",
    "ship_to_add": "送付先の追加",
    "ship_to_update": "送付先の変更",
    "ship_to_retire": "送付先の使用停止",
    "ship_to_restore": "送付先の使用再開",
}
# The keys of a merge's audit entries (app.merge.service writes them; the table names are the
# rows it moves to the survivor).
MERGE_LABELS: dict[str, str] = {
    "source_id": "統合元",
    "target_id": "統合先",
    "phones": "電話番号",
    "emails": "メールアドレス",
    "ship_tos": "送付先",
    "orders": "受注",
    "responses": "対応履歴",
    "actions": "AC履歴",
    "subscriptions": "定期",
    "calls": "着信・発信",
    "merged_customers": "統合済みの顧客",
    "duplicate_phones": "重複のため移さなかった電話番号",
    "duplicate_emails": "重複のため移さなかったメールアドレス",
    "filled": "空欄を補完した項目",
    "appended": "追記した項目",
}
_EXTRA_LABELS = {"phone": "電話番号", "source_id": "統合元", "target_id": "統合先"}
HIDDEN_KARTE = "（変更あり・カルテの閲覧権限がありません）"


@dataclass
class ChangeLine:
    label: str
    old: str | None  # None: a value set, not a change from something
    new: str
    hidden: bool = False


@dataclass
class HistoryEntry:
    id: int
    at: dt.datetime
    staff: str
    action: str
    action_label: str
    purpose: str
    lines: list[ChangeLine] = field(default_factory=list)


def _fmt(key: str, value: Any) -> str:
    if value is None or value == "" or value == []:
        return "（なし）"
    if key == "dm_required" and isinstance(value, bool):
        return "必要" if value else "不要"
    if isinstance(value, bool):
        return "はい" if value else "いいえ"
    if key == "gender":
        return dict(GENDERS).get(str(value), str(value))
    if key == "birth_date" and isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return value
        return f"{day:%Y/%m/%d}（{wareki(day)}）"
    if isinstance(value, list):
        return "、".join(_fmt(key, v) for v in value)
    if isinstance(value, dict):
        return "、".join(f"{k}: {_fmt(k, v)}" for k, v in value.items())
    return str(value)


def _merge_labels() -> dict[str, str]:
    """How the keys of a merge's audit entries are named (the merge feature, app.merge, sits
    above customers and writes its entries with these keys)."""
    return dict(MERGE_LABELS)


def _lines(action: str, changes: dict[str, Any], *, may_read_karte: bool) -> list[ChangeLine]:
    if action.startswith("ship_to"):
        labels = SHIP_TO_LABELS
    elif action.startswith("merge"):
        labels = _merge_labels()
    else:
        labels = FIELD_LABELS
    out: list[ChangeLine] = []
    for key, value in changes.items():
        if key == "ship_to_id":
            continue
        if key in ("source_id", "target_id") and isinstance(value, int):
            value = f"{value:08d}"  # お届け先コード
        label = labels.get(key) or FIELD_LABELS.get(key) or _EXTRA_LABELS.get(key, key)
        if key == "karte" and not may_read_karte:
            out.append(ChangeLine(label, None, HIDDEN_KARTE, hidden=True))
        elif isinstance(value, list) and len(value) == 2 and action.endswith("update"):
            out.append(ChangeLine(label, _fmt(key, value[0]), _fmt(key, value[1])))
        else:
            out.append(ChangeLine(label, None, _fmt(key, value)))
    return out


async def customer_history(
    session: AsyncSession,
    *,
    customer_id: int,
    may_read_karte: bool,
    limit: int = 50,
    before_id: int | None = None,
    actions: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = (),
) -> tuple[list[HistoryEntry], bool]:
    """The customer's history, newest first: at most ``limit`` entries (older than the entry
    ``before_id`` when given; only ``actions`` when given, never ``exclude``), and whether
    there are older ones. カルテ contents are replaced by a note unless ``may_read_karte``."""
    stmt = (
        select(AuditLog, Staff.name)
        .outerjoin(Staff, Staff.id == AuditLog.staff_id)
        .where(AuditLog.entity == "customer", AuditLog.entity_id == customer_id)
        .order_by(AuditLog.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        stmt = stmt.where(AuditLog.id < before_id)
    if actions is not None:
        stmt = stmt.where(AuditLog.action.in_(actions))
    if exclude:
        stmt = stmt.where(AuditLog.action.not_in(exclude))
    rows = (await session.execute(stmt)).all()
    entries: list[HistoryEntry] = []
    for log, staff_name in rows[:limit]:
        label = ACTION_LABELS.get(log.action, log.action)
        changes = log.changes if isinstance(log.changes, dict) else {}
        if "ship_to_id" in changes:
            label = f"{label}（No.{changes['ship_to_id']}）"
        entries.append(
            HistoryEntry(
                id=log.id,
                at=log.at,
                staff=staff_name or "—",
                action=log.action,
                action_label=label,
                purpose=log.purpose,
                lines=_lines(log.action, changes, may_read_karte=may_read_karte),
            )
        )
    return entries, len(rows) > limit
