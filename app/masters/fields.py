"""How a master is described: its fields (label, kind, limits) and the rules for a row.

One :class:`MasterSpec` per master drives the list, the form, validation and CSV import and
export (:mod:`app.masters.service`, :mod:`app.masters.csvio`). Values arrive as typed text
(a form field or a CSV cell) and are parsed by :func:`parse_value` with Japanese messages.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app import dates
from app.inputs import normalise

# text, textarea, int, date, bool, choice, ref (another master, by its code), password
KINDS = ("text", "textarea", "int", "date", "bool", "choice", "ref", "password")
TRUE_WORDS = {"1", "true", "yes", "y", "はい", "○", "有", "有効", "可", "する", "on"}
FALSE_WORDS = {"0", "false", "no", "n", "いいえ", "×", "無", "無効", "不可", "しない", "off", ""}
INT_LIMIT = 999_999_999
# Master periods (広告・販売・キャンペーン期間): long-running ones started years ago, so only a
# fixed earliest day; the future is where a typo (2205 for 2025) goes, so at most 10 years on.
MASTER_EARLIEST = dt.date(1990, 1, 1)
MASTER_YEARS_AHEAD = 10


@dataclass(frozen=True)
class Field:
    """One column of a master: ``name`` is the model attribute (for ``ref`` the id column),
    ``label`` the Japanese caption, also the CSV header."""

    name: str
    label: str
    kind: str = "text"
    required: bool = False
    max_length: int = 100
    min: int | None = 0
    max: int | None = INT_LIMIT
    nullable: bool = False  # int/date/ref: blank means "none" (else the default)
    default: Any = None
    choices: tuple[tuple[str, str], ...] = ()
    ref: str = ""  # the key of the referenced master's spec
    in_list: bool = True
    in_csv: bool = True
    help: str = ""

    @property
    def choice_labels(self) -> dict[str, str]:
        return dict(self.choices)


Check = Callable[[dict[str, Any]], dict[str, str]]


@dataclass(frozen=True)
class MasterSpec:
    """A master screen: model, fields, the fields that identify a row (import creates or
    updates by them), searchable fields and cross-field rules (``check``)."""

    key: str
    title: str
    model: type[Any]
    fields: tuple[Field, ...]
    keys: tuple[str, ...] = ("code",)
    search: tuple[str, ...] = ("code", "name")
    order_by: tuple[str, ...] = ("code",)
    group: str = ""
    summary: str = ""
    check: Check | None = None
    display: str = "name"  # how a row is named in messages and in other masters' lists
    retire: bool = True  # has an ``active`` flag; otherwise rows may be deleted

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def list_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.in_list and f.kind != "password")

    @property
    def csv_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.in_csv)

    @property
    def form_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.name != "active")


@dataclass
class Refs:
    """Code ↔ id of the rows of referenced masters (for ``ref`` fields)."""

    by_code: dict[str, dict[str, int]] = field(default_factory=dict)
    by_id: dict[str, dict[int, tuple[str, str]]] = field(default_factory=dict)  # code, name

    def code(self, ref: str, value: int | None) -> str:
        if value is None:
            return ""
        return self.by_id.get(ref, {}).get(value, ("", ""))[0]

    def label(self, ref: str, value: int | None) -> str:
        if value is None:
            return ""
        code, name = self.by_id.get(ref, {}).get(value, ("", ""))
        return f"{code} {name}".strip()


def parse_date(text: str) -> dt.date:
    """2025/04/01, 2025-4-1, 2025年4月1日 or 20250401; ValueError otherwise (see
    :func:`app.dates.parse_date`)."""
    day = dates.parse_date(text)
    if day is None:
        raise ValueError(text)
    return day


def parse_value(f: Field, raw: str, refs: Refs) -> tuple[Any, str]:
    """The typed text of one field as a model value, and a message ("" when fine)."""
    text = raw if f.kind in ("textarea", "password") else (raw or "").strip()
    if f.kind in ("text", "textarea"):
        if f.required and not text.strip():
            return text, f"{f.label}を入力してください。"
        if len(text) > f.max_length:
            return text, f"{f.label}は{f.max_length}文字以内で入力してください。"
        return text, ""
    if f.kind == "password":
        if text and len(text) < 8:
            return "", "パスワードは8文字以上にしてください。"
        return text, ""
    if f.kind == "bool":
        word = normalise(text).lower()
        if not word:  # an empty cell (or an unticked box): the field's default
            return bool(f.default), ""
        if word in TRUE_WORDS:
            return True, ""
        if word in FALSE_WORDS:
            return False, ""
        return None, f"{f.label}は 1（はい）か 0（いいえ）で入力してください。"
    if not text:
        if f.required:
            verb = "選んで" if f.kind in ("choice", "ref") else "入力して"
            return None, f"{f.label}を{verb}ください。"
        return (None if f.nullable else f.default), ""
    if f.kind == "int":
        t = normalise(text).replace(",", "")
        if t.endswith("円"):
            t = t[:-1]
        if not re.fullmatch(r"-?\d{1,10}", t):
            return None, f"{f.label}は半角の整数で入力してください。"
        n = int(t)
        if f.min is not None and n < f.min:
            return None, f"{f.label}は{f.min:,}以上で入力してください。"
        if f.max is not None and n > f.max:
            return None, f"{f.label}は{f.max:,}以下で入力してください。"
        return n, ""
    if f.kind == "date":
        try:
            day = parse_date(text)
        except ValueError:
            return None, f"{f.label}は 2025/04/01 の形で入力してください。"
        latest = dates.add_years(dt.date.today(), MASTER_YEARS_AHEAD)
        if not MASTER_EARLIEST <= day <= latest:
            return None, (
                f"{f.label}は {MASTER_EARLIEST:%Y/%m/%d} から {latest:%Y/%m/%d} までの日付を"
                "入力してください。"
            )
        return day, ""
    if f.kind == "choice":
        t = normalise(text)
        if t in f.choice_labels:
            return t, ""
        by_label = {label: value for value, label in f.choices}
        if t in by_label:
            return by_label[t], ""
        return None, f"{f.label}は一覧から選んでください。"
    if f.kind == "ref":
        t = normalise(text)
        found = refs.by_code.get(f.ref, {}).get(t)
        if found is None:
            return None, f"{f.label}「{t}」は登録されていません。"
        return found, ""
    raise AssertionError(f.kind)


def format_value(f: Field, value: Any, refs: Refs) -> str:
    """A model value as text for a form or a CSV cell (the inverse of :func:`parse_value`)."""
    if value is None:
        return ""
    if f.kind == "bool":
        return "1" if value else "0"
    if f.kind == "date":
        return f"{value:%Y/%m/%d}"
    if f.kind == "ref":
        return refs.code(f.ref, value)
    if f.kind == "password":
        return ""
    return str(value)


def display_value(f: Field, value: Any, refs: Refs) -> str:
    """A model value as the list shows it."""
    if value is None:
        return ""
    if f.kind == "bool":
        return "○" if value else ""
    if f.kind == "int":
        return f"{value:,}"
    if f.kind == "choice":
        return f.choice_labels.get(value, str(value))
    if f.kind == "ref":
        return refs.label(f.ref, value)
    if f.kind == "textarea":
        text = str(value)
        return text if len(text) <= 40 else text[:40] + "…"
    return format_value(f, value, refs)


def check_period(start: str, end: str, end_label: str) -> Check:
    """A rule: the end of a period is not before its start."""

    def check(values: dict[str, Any]) -> dict[str, str]:
        a, b = values.get(start), values.get(end)
        if isinstance(a, dt.date) and isinstance(b, dt.date) and b < a:
            return {end: f"{end_label}は開始日以降の日付にしてください。"}
        return {}

    return check
