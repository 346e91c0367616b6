"""CSV export and import of any master, in UTF-8 (with BOM, for Excel) or cp932 (Shift_JIS).

The header row is the fields' Japanese labels; referenced masters are written by their codes.
An import is checked in full first (:func:`preview_import`): every bad row is listed with its
row number, column and message, and nothing is written. :func:`apply_import` then creates or
updates every row (by the master's key columns) in the caller's one transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.csvsafe import safe_cell, unsafe_cell
from app.inputs import CONTROL
from app.masters.fields import Field, MasterSpec, format_value
from app.masters.service import apply_values, load_refs, staff_changed, validate

ENCODINGS = {"utf-8": "UTF-8", "cp932": "Shift_JIS (cp932)"}
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
# The longest cell, as the longest field a form may send (inputs.max_field_chars' default).
MAX_CELL_CHARS = 65_536


class ImportFileError(ValueError):
    """The file as a whole cannot be read (encoding, size, header)."""


@dataclass
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    column: str
    message: str


@dataclass
class ImportRow:
    row: int
    existing: Any | None
    values: dict[str, Any]


@dataclass
class ImportPreview:
    text: str
    encoding: str
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def creates(self) -> int:
        return sum(1 for r in self.rows if r.existing is None)

    @property
    def updates(self) -> int:
        return sum(1 for r in self.rows if r.existing is not None)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows)


def _export_fields(spec: MasterSpec) -> tuple[Field, ...]:
    return tuple(f for f in spec.csv_fields if f.kind != "password")


async def export_csv(session: AsyncSession, spec: MasterSpec, *, encoding: str) -> bytes:
    """Every row of the master (retired ones too, with 有効 0) as CSV in ``encoding``.

    Characters cp932 cannot hold become "?" in a cp932 file."""
    if encoding not in ENCODINGS:
        raise ValueError(encoding)
    refs = await load_refs(session, spec)
    fields = _export_fields(spec)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([f.label for f in fields])
    rows = await session.scalars(
        select(spec.model).order_by(*(getattr(spec.model, n) for n in spec.order_by))
    )
    for row in rows:
        cells = []
        for f in fields:
            text = format_value(f, getattr(row, f.name), refs)
            cells.append(safe_cell(text) if f.kind in ("text", "textarea") else text)
        writer.writerow(cells)
    if encoding == "utf-8":
        return ("\ufeff" + out.getvalue()).encode("utf-8")
    return out.getvalue().encode("cp932", errors="replace")


def _records(text: str) -> list[list[str]]:
    """The CSV's rows, however long a cell (a long cell is then a bad row, not an error of
    the csv module's own 131,072-character limit)."""
    previous = csv.field_size_limit(max(len(text), MAX_CELL_CHARS) + 1)
    try:
        return list(csv.reader(io.StringIO(text)))
    finally:
        csv.field_size_limit(previous)


def _bad_cell(cells: list[str], header: list[str]) -> tuple[str, str] | None:
    """The column and reason of the row's first cell no master field may hold."""
    for name, cell in zip(header, cells, strict=True):
        if len(cell) > MAX_CELL_CHARS:
            return name, f"長すぎます（{MAX_CELL_CHARS:,}文字まで）。"
        if CONTROL.search(cell):
            return name, "使えない文字（制御文字）が含まれています。"
    return None


def decode(data: bytes, encoding: str) -> tuple[str, str]:
    """The file's text and its encoding; ``auto`` tries UTF-8, then cp932."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(f"ファイルが大きすぎます（{MAX_BYTES // 1024 // 1024}MBまで）。")
    tries = ["utf-8", "cp932"] if encoding == "auto" else [encoding]
    for enc in tries:
        if enc not in ENCODINGS:
            raise ImportFileError("文字コードを選んでください。")
        try:
            text = data.decode("utf-8-sig" if enc == "utf-8" else "cp932")
        except UnicodeDecodeError:
            continue
        # Old Windows tools end a file with Ctrl-Z (EOF); it is not part of the last row.
        return text.removesuffix("\x1a"), enc
    names = "・".join(ENCODINGS[e] for e in tries)
    raise ImportFileError(f"ファイルを{names}として読めません。文字コードを確認してください。")


async def preview_import(
    session: AsyncSession,
    spec: MasterSpec,
    *,
    text: str,
    encoding: str,
    actor_admin: bool = True,
    actor_id: int | None = None,
) -> ImportPreview:
    """Check every row of the CSV ``text``; writes nothing."""
    preview = ImportPreview(text=text, encoding=encoding)
    records = _records(text)
    while records and not any(c.strip() for c in records[-1]):
        records.pop()
    if not records:
        raise ImportFileError("ファイルが空です。1行目に見出し（列名）が必要です。")
    if len(records) - 1 > MAX_ROWS:
        raise ImportFileError(f"一度に取り込めるのは{MAX_ROWS:,}行までです。")
    by_label = {f.label: f for f in spec.csv_fields} | {f.name: f for f in spec.csv_fields}
    header = [c.strip().lstrip("\ufeff") for c in records[0]]
    columns: list[Field | None] = []
    for name in header:
        f = by_label.get(name)
        if f is None and name:
            preview.errors.append(RowError(1, name, "不明な列です。"))
        columns.append(f)
    present = {f.name for f in columns if f is not None}
    missing = [spec.field(k).label for k in spec.keys if k not in present]
    if missing:
        preview.errors.append(RowError(1, "・".join(missing), "この列は必須です。"))
    if preview.errors:
        return preview

    refs = await load_refs(session, spec)
    existing: dict[tuple[Any, ...], Any] = {
        tuple(getattr(r, k) for k in spec.keys): r
        for r in await session.scalars(select(spec.model))
    }
    given = tuple(f for f in spec.fields if f.name in present)
    seen: dict[tuple[Any, ...], int] = {}
    for number, cells in enumerate(records[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            preview.errors.append(
                RowError(
                    number, "", f"列の数が見出しと違います（{len(cells)}列／{len(header)}列）。"
                )
            )
            continue
        bad = _bad_cell(cells, header)
        if bad is not None:
            preview.errors.append(RowError(number, *bad))
            continue
        raw = {f.name: unsafe_cell(c) for f, c in zip(columns, cells, strict=True) if f is not None}
        # the row's key decides create or update
        key_values, key_errors = await validate(
            session,
            spec,
            raw,
            refs=refs,
            row=None,
            fields=tuple(spec.field(k) for k in spec.keys),
            unique=False,
        )
        row_errors = {k: v for k, v in key_errors.items() if k in spec.keys}
        if row_errors:
            for name, message in row_errors.items():
                preview.errors.append(RowError(number, spec.field(name).label, message))
            continue
        key = tuple(key_values[k] for k in spec.keys)
        if key in seen:
            preview.errors.append(
                RowError(
                    number,
                    "・".join(spec.field(k).label for k in spec.keys),
                    f"{seen[key]}行目と同じです（1つのファイルに同じ行は1回まで）。",
                )
            )
            continue
        seen[key] = number
        row = existing.get(key)
        fields = given if row is not None else spec.csv_fields
        if row is None:  # a new row: the columns the file lacks take their defaults
            for f in spec.csv_fields:
                raw.setdefault(f.name, format_value(f, f.default, refs))
        values, errors = await validate(
            session,
            spec,
            raw,
            refs=refs,
            row=row,
            fields=fields,
            unique=False,
            actor_admin=actor_admin,
            actor_id=actor_id,
        )
        if errors:
            for name, message in errors.items():
                preview.errors.append(RowError(number, spec.field(name).label, message))
            continue
        preview.rows.append(ImportRow(row=number, existing=row, values=values))
    if not preview.rows and not preview.errors:
        raise ImportFileError("取り込む行がありません。")
    return preview


async def apply_import(
    session: AsyncSession, spec: MasterSpec, *, preview: ImportPreview, staff_id: int | None
) -> tuple[int, int]:
    """Write a clean preview: create or update every row; returns (created, updated)."""
    if preview.errors:
        raise ValueError("the preview has errors")
    created = updated = 0
    for item in preview.rows:
        row = item.existing
        if row is None:
            row = spec.model()
            for f in spec.fields:
                if f.kind != "password" and f.name not in item.values:
                    setattr(row, f.name, f.default)
            session.add(row)
            created += 1
        else:
            updated += 1
        changes = apply_values(spec, row, item.values)
        # 担当者: a password reset, a role or extension change or retirement ends that
        # staff member's sessions
        await staff_changed(
            session,
            spec,
            row=row,
            changes=changes,
            created=item.existing is None,
            staff_id=staff_id,
        )
    await session.flush()
    await record(
        session,
        action="master_import",
        entity=spec.key,
        staff_id=staff_id,
        changes={"created": created, "updated": updated, "encoding": preview.encoding},
    )
    return created, updated
