"""マスタ管理 screens (X1–X10): one generic list / form / CSV import-export per master, driven by
:mod:`app.masters.registry`, and the rank master's 再計算 button (R1)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.dates import today_jst
from app.errors import error_response
from app.inputs import ascii_int, form_scope, read_form
from app.masters import csvio
from app.masters.fields import Field, MasterSpec, display_value
from app.masters.registry import BY_KEY, GROUPS, SPECS
from app.masters.service import (
    STATUSES,
    MasterRefused,
    delete_row,
    form_values,
    list_rows,
    load_refs,
    save_row,
    set_active,
)
from app.orders.ranks import recalculate_ranks
from app.security import requires_role
from app.web import current_staff, db, is_htmx, render

ROLES = ("backoffice",)  # and admin, always
LIST_KEYS = ("q", "status", "page")
DONE = {
    "created": "「{name}」を登録しました。",
    "updated": "「{name}」を更新しました。",
    "retired": "「{name}」を使用停止にしました（受注などの履歴には残ります）。",
    "reactivated": "「{name}」の使用を再開しました。",
    "deleted": "1件削除しました。",
    "imported": "CSV を取り込みました（新規 {c}件・更新 {u}件）。",
    "recalculated": "ランクを再計算しました（{n}人のランクが変わりました）。",
}


def _spec(request: Request) -> MasterSpec | None:
    return BY_KEY.get(request.path_params.get("key", ""))


def _not_found(request: Request) -> Response:
    return error_response(request, 404, message="指定のマスタまたは行が見つかりません。")


def _staff_id(request: Request) -> int | None:
    staff = current_staff(request)
    return staff.id if staff is not None else None


def _is_admin(request: Request) -> bool:
    staff = current_staff(request)
    return staff is not None and staff.role == "admin"


def _list_url(spec: MasterSpec, params: dict[str, str] | None = None, **extra: Any) -> str:
    pairs = {k: v for k, v in (params or {}).items() if k in LIST_KEYS and v}
    pairs.update({k: str(v) for k, v in extra.items() if v is not None})
    query = urlencode(pairs)
    return f"/masters/{spec.key}" + (f"?{query}" if query else "")


def _row_name(spec: MasterSpec, row: Any) -> str:
    value = getattr(row, spec.display, "")
    text = str(value)
    return text if len(text) <= 30 else text[:30] + "…"


def _notice(request: Request) -> str:
    params = request.query_params
    template = DONE.get(params.get("done", ""))
    if template is None:
        return ""
    return template.format(
        name=params.get("name", ""),
        c=params.get("c", "0"),
        u=params.get("u", "0"),
        n=params.get("n", "0"),
    )


# --- index and list -----------------------------------------------------------------------------


@requires_role(*ROLES)
async def index(request: Request) -> Response:
    """マスタ管理: every master by group."""
    groups = [(g, [s for s in SPECS if s.group == g]) for g in GROUPS]
    return render(request, "masters/index", {"groups": groups, "fkeys": []})


async def _list_response(
    request: Request, spec: MasterSpec, *, notice: str = "", status_code: int = 200
) -> Response:
    params = {k: request.query_params.get(k, "") for k in LIST_KEYS}
    status = params["status"] if params["status"] in dict(STATUSES) else "active"
    raw_page = params["page"]
    page = ascii_int(raw_page, max_digits=6) or 1
    session = db(request)
    result = await list_rows(session, spec, q=params["q"], status=status, page=page)
    refs = await load_refs(session, spec)

    def page_url(n: int) -> str:
        return _list_url(spec, params, page=n)

    def cell(f: Field, row: Any) -> str:
        return display_value(f, getattr(row, f.name), refs)

    ctx = {
        "spec": spec,
        "result": result,
        "refs": refs,
        "q": params["q"],
        "status": status,
        "statuses": STATUSES if spec.retire else (),
        "page_url": page_url,
        "cell": cell,
        "back": urlencode({k: v for k, v in params.items() if v}),
        "notice": notice or _notice(request),
        "may_recalculate": spec.key == "ranks",
        "today": today_jst(),
        "fkeys": [(1, "新規登録", f"/masters/{spec.key}/new"), (9, "マスタ一覧", "/masters")],
    }
    return render(request, "masters/list", ctx, status_code=status_code)


@requires_role(*ROLES)
async def master_list(request: Request) -> Response:
    """A master's rows: free-text search, 有効のみ / すべて / 使用停止のみ, 50 a page."""
    spec = _spec(request)
    if spec is None:
        return _not_found(request)
    return await _list_response(request, spec)


# --- form ---------------------------------------------------------------------------------------


async def _form_response(
    request: Request,
    spec: MasterSpec,
    *,
    row: Any | None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    refs = await load_refs(db(request), spec)
    options = {
        ref: sorted(refs.by_id.get(ref, {}).values())
        for ref in {f.ref for f in spec.fields if f.kind == "ref"}
    }
    back = request.query_params.get("back", "")
    ctx = {
        "spec": spec,
        "row": row,
        "values": values if values is not None else form_values(spec, row, refs),
        "errors": errors or {},
        "options": options,
        "may_set_password": _is_admin(request),
        "back": back,
        "list_url": f"/masters/{spec.key}" + (f"?{back}" if back else ""),
        "action": f"/masters/{spec.key}/{row.id}"
        if row is not None
        else f"/masters/{spec.key}/new",
        "fkeys": [(1, "登録", "#master-save"), (10, "一覧へ戻る", f"/masters/{spec.key}")],
    }
    return render(request, "masters/form", ctx, status_code=status_code)


def _posted(form: FormData, spec: MasterSpec) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in spec.form_fields:
        value = form.get(f.name)
        out[f.name] = value if isinstance(value, str) else ""
    return out


@requires_role(*ROLES)
async def new_form(request: Request) -> Response:
    spec = _spec(request)
    if spec is None:
        return _not_found(request)
    return await _form_response(request, spec, row=None)


@requires_role(*ROLES)
async def edit_form(request: Request) -> Response:
    spec = _spec(request)
    row = await db(request).get(spec.model, request.path_params["id"]) if spec else None
    if spec is None or row is None:
        return _not_found(request)
    return await _form_response(request, spec, row=row)


@requires_role(*ROLES)
async def save(request: Request) -> Response:
    """Create or update a row; messages beside the fields (HTTP 422) and nothing written."""
    spec = _spec(request)
    if spec is None:
        return _not_found(request)
    session = db(request)
    row_id = request.path_params.get("id")
    existing = await session.get(spec.model, row_id) if row_id is not None else None
    if row_id is not None and existing is None:
        return _not_found(request)
    form = await read_form(request)
    raw = _posted(form, spec)
    row, errors = await save_row(
        session,
        spec,
        row_id=row_id,
        raw=raw,
        staff_id=_staff_id(request),
        actor_admin=_is_admin(request),
    )
    if errors or row is None:
        return await _form_response(
            request, spec, row=existing, values=raw, errors=errors, status_code=422
        )
    back = form.get("back")
    params = dict(_parse_qs(back if isinstance(back, str) else ""))
    done = "updated" if row_id is not None else "created"
    return _to_list(request, spec, params, done=done, name=_row_name(spec, row))


def _parse_qs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return [(k, v) for k, v in parse_qsl(query) if k in LIST_KEYS]


def _to_list(request: Request, spec: MasterSpec, params: dict[str, str], **done: Any) -> Response:
    url = _list_url(spec, params, **done)
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Location": url})
    return RedirectResponse(url, status_code=303)


@requires_role(*ROLES)
async def toggle_active(request: Request) -> Response:
    """使用停止 / 使用再開 from the list."""
    spec = _spec(request)
    if spec is None or not spec.retire:
        return _not_found(request)
    form = await read_form(request)
    active = form.get("active") == "1"
    row_id = int(request.path_params["id"])
    staff_id = _staff_id(request)
    back = form.get("back")
    params = dict(_parse_qs(back if isinstance(back, str) else ""))
    try:
        row = await set_active(
            db(request),
            spec,
            row_id=row_id,
            active=active,
            staff_id=staff_id,
            actor_admin=_is_admin(request),
        )
    except LookupError:
        return _not_found(request)
    except MasterRefused as exc:
        return await _list_response(request, spec, notice=str(exc), status_code=409)
    done = "reactivated" if active else "retired"
    return _to_list(request, spec, params, done=done, name=_row_name(spec, row))


@requires_role(*ROLES)
async def delete(request: Request) -> Response:
    """Delete a row of a master without 有効 (送料, セット内容, 同梱)."""
    spec = _spec(request)
    if spec is None or spec.retire:
        return _not_found(request)
    form = await read_form(request)
    try:
        await delete_row(
            db(request), spec, row_id=int(request.path_params["id"]), staff_id=_staff_id(request)
        )
    except LookupError:
        return _not_found(request)
    back = form.get("back")
    return _to_list(
        request, spec, dict(_parse_qs(back if isinstance(back, str) else "")), done="deleted"
    )


# --- CSV ----------------------------------------------------------------------------------------


@requires_role(*ROLES)
async def export(request: Request) -> Response:
    """The whole master as CSV (``?encoding=utf-8`` or ``cp932``)."""
    spec = _spec(request)
    if spec is None:
        return _not_found(request)
    encoding = request.query_params.get("encoding", "utf-8")
    if encoding not in csvio.ENCODINGS:
        return Response("文字コードは utf-8 か cp932 です。", status_code=400)
    data = await csvio.export_csv(db(request), spec, encoding=encoding)
    charset = "utf-8" if encoding == "utf-8" else "shift_jis"
    name = f"{spec.key}_{today_jst():%Y%m%d}{'' if encoding == 'utf-8' else '_sjis'}.csv"
    return Response(
        data,
        media_type=f"text/csv; charset={charset}",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _import_page(
    request: Request,
    spec: MasterSpec,
    *,
    preview: csvio.ImportPreview | None = None,
    error: str = "",
    encoding: str = "auto",
    status_code: int = 200,
) -> Response:
    ctx = {
        "spec": spec,
        "preview": preview,
        "error": error,
        "encoding": encoding,
        "encodings": [("auto", "自動判別"), *csvio.ENCODINGS.items()],
        "headers": [f.label for f in spec.csv_fields],
        "keys": [spec.field(k).label for k in spec.keys],
        "fkeys": [(10, "一覧へ戻る", f"/masters/{spec.key}")],
    }
    return render(request, "masters/import", ctx, status_code=status_code)


@requires_role(*ROLES)
async def import_form(request: Request) -> Response:
    spec = _spec(request)
    if spec is None:
        return _not_found(request)
    return await _import_page(request, spec)


@requires_role(*ROLES)
async def import_preview(request: Request) -> Response:
    """Read the uploaded file and list every bad row; writes nothing."""
    spec = _spec(request)
    if spec is None:
        return _not_found(request)
    async with form_scope(request) as form:
        upload = form.get("file")
        raw_encoding = form.get("encoding")
        encoding = raw_encoding if isinstance(raw_encoding, str) else "auto"
        has_file = isinstance(upload, UploadFile) and bool(upload.filename)
        data = await upload.read(csvio.MAX_BYTES + 1) if isinstance(upload, UploadFile) else b""
    if not has_file:
        return await _import_page(
            request, spec, error="CSV ファイルを選んでください。", status_code=422
        )
    try:
        text, used = csvio.decode(data, encoding)
        preview = await csvio.preview_import(
            db(request),
            spec,
            text=text,
            encoding=used,
            actor_admin=_is_admin(request),
            actor_id=_staff_id(request),
        )
    except csvio.ImportFileError as exc:
        return await _import_page(request, spec, error=str(exc), encoding=encoding, status_code=422)
    return await _import_page(
        request,
        spec,
        preview=preview,
        encoding=encoding,
        status_code=200 if preview.ok else 422,
    )


@requires_role(*ROLES)
async def import_apply(request: Request) -> Response:
    """取り込む: check the previewed text again, then write every row in this transaction."""
    spec = _spec(request)
    if spec is None:
        return _not_found(request)
    form = await read_form(request)
    text = form.get("text")
    raw_encoding = form.get("encoding")
    encoding = raw_encoding if isinstance(raw_encoding, str) else "utf-8"
    if not isinstance(text, str) or encoding not in csvio.ENCODINGS:
        return await _import_page(
            request, spec, error="取り込む内容がありません。", status_code=422
        )
    session = db(request)
    try:
        preview = await csvio.preview_import(
            session,
            spec,
            text=text,
            encoding=encoding,
            actor_admin=_is_admin(request),
            actor_id=_staff_id(request),
        )
    except csvio.ImportFileError as exc:
        return await _import_page(request, spec, error=str(exc), status_code=422)
    if not preview.ok:
        return await _import_page(request, spec, preview=preview, status_code=422)
    created, updated = await csvio.apply_import(
        session, spec, preview=preview, staff_id=_staff_id(request)
    )
    return _to_list(request, spec, {}, done="imported", c=created, u=updated)


# --- ranks --------------------------------------------------------------------------------------


@requires_role(*ROLES)
async def recalculate(request: Request) -> Response:
    """ランク再計算 on demand (the nightly job does the same)."""
    changed = await recalculate_ranks(db(request), today=today_jst(), staff_id=_staff_id(request))
    return _to_list(request, BY_KEY["ranks"], {}, done="recalculated", n=changed)


routes = [
    Route("/masters", index, methods=["GET"]),
    Route("/masters/ranks/recalculate", recalculate, methods=["POST"]),
    Route("/masters/{key}", master_list, methods=["GET"]),
    Route("/masters/{key}/new", new_form, methods=["GET"]),
    Route("/masters/{key}/new", save, methods=["POST"]),
    Route("/masters/{key}/export", export, methods=["GET"]),
    Route("/masters/{key}/import", import_form, methods=["GET"]),
    Route("/masters/{key}/import", import_preview, methods=["POST"]),
    Route("/masters/{key}/import/apply", import_apply, methods=["POST"]),
    Route("/masters/{key}/{id:int}", edit_form, methods=["GET"]),
    Route("/masters/{key}/{id:int}", save, methods=["POST"]),
    Route("/masters/{key}/{id:int}/active", toggle_active, methods=["POST"]),
    Route("/masters/{key}/{id:int}/delete", delete, methods=["POST"]),
]
