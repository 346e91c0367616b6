"""顧客モニタ: search, and the 顧客詳細 tab — the editable customer form (M3), its change
history (M7), ship-to addresses (M8) and the postcode look-up."""

from __future__ import annotations

import re
from itertools import zip_longest
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.customers.birthdate import parse_birth_date, wareki
from app.customers.editing import (
    FLAGS,
    GENDERS,
    DetailForm,
    EditConflict,
    MergeRow,
    PhoneRow,
    form_from_customer,
    form_from_json,
    form_to_json,
    load_customer,
    merge_forms,
    update_customer,
)
from app.customers.history import customer_history
from app.customers.models import Customer
from app.customers.postcodes import (
    BAD_POSTCODE,
    PREFECTURES,
    UNKNOWN_POSTCODE,
    lookup_postcode,
    postcode_digits,
)
from app.customers.service import PHONE_KINDS, CustomerInputError, search_customers
from app.customers.shiptos import (
    ShipToForm,
    add_ship_to,
    get_ship_to,
    list_ship_tos,
    set_ship_to_active,
    update_ship_to,
)
from app.dates import today_jst
from app.errors import error_response
from app.inputs import ascii_int, form_text, read_form
from app.monitor.service import age_on
from app.monitor.web import call_param, customer_missing, render_tab, unknown_customer
from app.web import current_staff, db, is_htmx, render, require_staff, templates

PRIMARY = ("登録", "#detail-save")
RECENT_HISTORY = 5
HISTORY_PAGE = 50
# 変更履歴 filters: (only these actions, never these)
HISTORY_FILTERS: dict[str, tuple[tuple[str, ...] | None, tuple[str, ...]]] = {
    "": (None, ()),
    "changes": (None, ("view_karte",)),
    "karte": (("view_karte",), ()),
}


async def search(request: Request) -> Response:
    q = request.query_params.get("q", "")
    result = await search_customers(db(request), q=q)
    return render(
        request,
        "customers",
        {
            "q": q,
            "result": result,
            "fkeys": [(1, "検索", "#customer-q"), (2, "新規登録", "#customer-new")],
        },
    )


# --- helpers --------------------------------------------------------------------------------


def _cid(request: Request) -> int:
    return int(request.path_params["customer_id"])


def _may_read_karte(request: Request) -> bool:
    staff = current_staff(request)
    return staff is not None and staff.role in request.app.state.settings.privacy.karte_roles


def _ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _call_query(request: Request, sep: str = "?") -> str:
    call = call_param(request)
    return f"{sep}call={call}" if call is not None else ""


def _birth_hint(text: str) -> str:
    """昭和45年4月1日・54歳 beside the birth date the form holds."""
    try:
        day = parse_birth_date(text, today=today_jst())
    except ValueError:
        return ""
    if day is None:
        return ""
    return f"{wareki(day)}・{age_on(day, today_jst())}歳"


def _form_from_post(data: FormData, *, with_karte: bool) -> DetailForm:
    def many(key: str) -> list[str]:
        return [v for v in data.getlist(key) if isinstance(v, str)]

    phones = [
        PhoneRow(number, kind or "home", label)
        for number, kind, label in zip_longest(
            many("phone_number"), many("phone_kind"), many("phone_label"), fillvalue=""
        )
    ]
    return DetailForm(
        phones=phones,
        name=form_text(data, "name"),
        kana=form_text(data, "kana"),
        postcode=form_text(data, "postcode"),
        prefecture=form_text(data, "prefecture"),
        city=form_text(data, "city"),
        street=form_text(data, "street"),
        building=form_text(data, "building"),
        company1=form_text(data, "company1"),
        company2=form_text(data, "company2"),
        birth_date=form_text(data, "birth_date"),
        gender=form_text(data, "gender"),
        dm_required=bool(form_text(data, "dm_required")),
        emails=many("email"),
        flags=many("flag"),
        alert=form_text(data, "alert"),
        karte=form_text(data, "karte") if with_karte and "karte" in data else None,
        memo=form_text(data, "memo"),
    )


def _ship_to_form_from_post(data: FormData) -> ShipToForm:
    return ShipToForm(
        label=form_text(data, "label"),
        name=form_text(data, "name"),
        kana=form_text(data, "kana"),
        postcode=form_text(data, "postcode"),
        prefecture=form_text(data, "prefecture"),
        city=form_text(data, "city"),
        street=form_text(data, "street"),
        building=form_text(data, "building"),
        phone=form_text(data, "phone"),
    )


def _common(request: Request, customer_id: int) -> dict[str, Any]:
    return {
        "cid": customer_id,
        "prefectures": PREFECTURES,
        "phone_kinds": PHONE_KINDS,
        "call_query": _call_query(request),
    }


async def _ship_to_context(
    request: Request,
    customer_id: int,
    *,
    editor: dict[str, Any] | None = None,
    notice: str = "",
) -> dict[str, Any]:
    """The 送付先 section: every ship-to (retired ones too) and the add/edit form if open."""
    ship_tos = await list_ship_tos(db(request), customer_id=customer_id, include_retired=True)
    return {
        **_common(request, customer_id),
        "ship_tos": ship_tos,
        "ship_editor": editor,
        "ship_notice": notice,
    }


async def _detail_context(
    request: Request,
    customer: Customer,
    *,
    form: DetailForm,
    version: int | None = None,
    original: str | None = None,
    errors: dict[str, str] | None = None,
    purpose: str = "",
    notice: str = "",
    conflict: list[MergeRow] | None = None,
    ship_editor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    may_karte = _may_read_karte(request)
    history, more = await customer_history(
        db(request),
        customer_id=customer.id,
        may_read_karte=may_karte,
        limit=RECENT_HISTORY,
        exclude=("view_karte",),
    )
    return {
        **await _ship_to_context(request, customer.id, editor=ship_editor),
        "c": customer,
        "f": form,
        "version": customer.version if version is None else version,
        "original": original
        if original is not None
        else form_to_json(form_from_customer(customer, with_karte=may_karte)),
        "errors": errors or {},
        "purpose": purpose,
        "notice": notice,
        "conflict": conflict,
        "may_karte": may_karte,
        "has_karte": bool(customer.karte.strip()),
        "flags": FLAGS,
        "genders": GENDERS,
        "birth_hint": _birth_hint(form.birth_date),
        "history": history,
        "history_more": more,
        "readonly": customer.merged_into_id is not None,
    }


async def _detail_tab(
    request: Request, customer: Customer, *, status_code: int = 200, **kw: Any
) -> Response:
    form = kw.pop("form", None) or form_from_customer(customer, with_karte=_may_read_karte(request))
    ctx = await _detail_context(request, customer, form=form, **kw)
    return await render_tab(
        request,
        customer_id=customer.id,
        tab="detail",
        template="monitor_detail",
        context=ctx,
        primary=None if ctx["readonly"] else PRIMARY,
        status_code=status_code,
    )


# --- 顧客詳細 -------------------------------------------------------------------------------


async def monitor(request: Request) -> Response:
    """顧客モニタ, 顧客詳細 tab: the customer's data as an editable form."""
    customer = await load_customer(db(request), customer_id=_cid(request))
    if customer is None:
        return customer_missing(request)
    saved = request.query_params.get("saved", "")
    notice = {"1": "保存しました。", "0": "変更はありませんでした。"}.get(saved, "")
    return await _detail_tab(request, customer, notice=notice)


async def save(request: Request) -> Response:
    """F1 登録: save the form (optimistic lock on ``version``; the history records the
    changed fields and the 更新目的)."""
    staff = require_staff(request)
    session = db(request)
    cid = _cid(request)
    data = await read_form(request)
    may_karte = _may_read_karte(request)
    form = _form_from_post(data, with_karte=may_karte)
    raw_version = str(data.get("version", ""))
    number = ascii_int(raw_version, max_digits=18)
    version = -1 if number is None else number
    purpose = str(data.get("purpose", ""))
    original = str(data.get("original", ""))
    try:
        changes = await update_customer(
            session,
            customer_id=cid,
            version=version,
            form=form,
            staff_id=staff.id,
            purpose=purpose,
            ip=_ip(request),
            today=today_jst(),
        )
    except LookupError:
        return customer_missing(request)
    except CustomerInputError as exc:
        customer = await load_customer(session, customer_id=cid)
        if customer is None:
            return customer_missing(request)
        return await _detail_tab(
            request,
            customer,
            status_code=400,
            form=form,
            version=version,
            original=original or None,
            errors=exc.errors,
            purpose=purpose,
        )
    except EditConflict:
        await session.rollback()
        customer = await load_customer(session, customer_id=cid)
        if customer is None:
            return customer_missing(request)
        theirs = form_from_customer(customer, with_karte=may_karte)
        merged, rows = merge_forms(original=form_from_json(original), mine=form, theirs=theirs)
        return await _detail_tab(
            request,
            customer,
            status_code=409,
            form=merged,
            original=form_to_json(theirs),
            purpose=purpose,
            conflict=rows,
        )
    if not is_htmx(request):
        return RedirectResponse(
            f"/customers/{cid}?saved={1 if changes else 0}{_call_query(request, '&')}",
            status_code=303,
        )
    customer = await load_customer(session, customer_id=cid)
    assert customer is not None
    notice = "保存しました。" if changes else "変更はありませんでした。"
    return await _detail_tab(request, customer, notice=notice)


async def blank_row(request: Request) -> Response:
    """A new empty phone or e-mail row (the 追加 buttons)."""
    kind = request.path_params["kind"]
    if kind not in ("phone", "email"):
        return error_response(request, 404)
    return templates.TemplateResponse(
        request,
        f"monitor_detail/_{kind}_row.html",
        {
            "row": PhoneRow() if kind == "phone" else "",
            "error": "",
            "focus": True,
            "phone_kinds": PHONE_KINDS,
            "readonly": False,
        },
    )


_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,15}$")


async def postcode(request: Request) -> Response:
    """郵便番号 → 県名・市町村名・番地 (the address fields, with a message beside the postcode
    when it is malformed or unknown; the fields typed so far are kept then)."""
    q = request.query_params
    code = q.get("postcode", q.get("code", ""))
    prefix = q.get("prefix", "")
    prefix = prefix if _PREFIX.match(prefix) else ""
    values = {k: q.get(k, "") for k in ("prefecture", "city", "street")}
    message = ""
    towns: list[str] = []
    found = lookup_postcode(code)
    if found is not None:
        street = values["street"]
        keep = bool(found.town) and street.startswith(found.town)
        values = {
            "prefecture": found.prefecture,
            "city": found.city,
            "street": street if keep else found.town,
        }
        towns = found.towns if len(found.towns) > 1 else []
    elif postcode_digits(code) is None:
        message = BAD_POSTCODE
    elif code.strip():
        message = UNKNOWN_POSTCODE
    return templates.TemplateResponse(
        request,
        "monitor_detail/_address_lookup.html",
        {
            "p": prefix,
            "v": values,
            "towns": towns,
            "message": message,
            "found": found,
            "prefectures": PREFECTURES,
            "errors": {},
        },
    )


# --- 変更履歴 -------------------------------------------------------------------------------


async def history(request: Request) -> Response:
    """変更履歴: every change, registration, merge, ship-to change and カルテ view, newest
    first, inside the monitor's 顧客詳細 tab."""
    session = db(request)
    cid = _cid(request)
    if (missing := await unknown_customer(request, cid)) is not None:
        return missing
    kind = request.query_params.get("kind", "")
    kind = kind if kind in HISTORY_FILTERS else ""
    raw_before = request.query_params.get("before", "")
    entries, more = await customer_history(
        session,
        customer_id=cid,
        may_read_karte=_may_read_karte(request),
        limit=HISTORY_PAGE,
        before_id=ascii_int(raw_before, max_digits=18),
        actions=HISTORY_FILTERS[kind][0],
        exclude=HISTORY_FILTERS[kind][1],
    )
    return await render_tab(
        request,
        customer_id=cid,
        tab="detail",
        template="customer_history",
        context={
            **_common(request, cid),
            "entries": entries,
            "more": more,
            "kind": kind,
            "before": raw_before,
        },
    )


# --- 送付先 ---------------------------------------------------------------------------------


async def _ship_tos_response(
    request: Request,
    cid: int,
    *,
    editor: dict[str, Any] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    """The 送付先 section for htmx; the whole 顧客詳細 tab (section included) otherwise."""
    if is_htmx(request):
        ctx = await _ship_to_context(request, cid, editor=editor, notice=notice)
        return templates.TemplateResponse(
            request, "monitor_detail/_ship_tos.html", ctx, status_code=status_code
        )
    customer = await load_customer(db(request), customer_id=cid)
    if customer is None:
        return customer_missing(request)
    return await _detail_tab(request, customer, status_code=status_code, ship_editor=editor)


def _editor(
    cid: int, *, ship_to_id: int | None, form: ShipToForm, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    base = f"/customers/{cid}/ship-tos"
    return {
        "action": f"{base}/{ship_to_id}" if ship_to_id is not None else base,
        "editing": ship_to_id is not None,
        "v": form,
        "errors": errors or {},
    }


async def ship_tos(request: Request) -> Response:
    """The 送付先 section (closing an open form)."""
    cid = _cid(request)
    if (missing := await unknown_customer(request, cid)) is not None:
        return missing
    return await _ship_tos_response(request, cid)


async def ship_to_new(request: Request) -> Response:
    """The form to add a ship-to."""
    cid = _cid(request)
    if (missing := await unknown_customer(request, cid)) is not None:
        return missing
    return await _ship_tos_response(
        request, cid, editor=_editor(cid, ship_to_id=None, form=ShipToForm())
    )


async def ship_to_edit(request: Request) -> Response:
    """The form to change a ship-to."""
    cid = _cid(request)
    sid = int(request.path_params["ship_to_id"])
    try:
        ship_to = await get_ship_to(db(request), customer_id=cid, ship_to_id=sid)
    except LookupError:
        return customer_missing(request)
    return await _ship_tos_response(
        request, cid, editor=_editor(cid, ship_to_id=sid, form=ShipToForm.of(ship_to))
    )


async def ship_to_save(request: Request) -> Response:
    """Add (POST …/ship-tos) or change (POST …/ship-tos/{id}) a ship-to."""
    staff = require_staff(request)
    session = db(request)
    cid = _cid(request)
    raw_sid = request.path_params.get("ship_to_id")
    sid = int(raw_sid) if raw_sid is not None else None
    if (missing := await unknown_customer(request, cid)) is not None:
        return missing
    form = _ship_to_form_from_post(await read_form(request))
    try:
        if sid is None:
            await add_ship_to(session, customer_id=cid, form=form, staff_id=staff.id)
            notice = "送付先を追加しました。"
        else:
            changed = await update_ship_to(
                session, customer_id=cid, ship_to_id=sid, form=form, staff_id=staff.id
            )
            notice = "送付先を変更しました。" if changed else "変更はありませんでした。"
    except LookupError:
        return customer_missing(request)
    except CustomerInputError as exc:
        editor = _editor(cid, ship_to_id=sid, form=form, errors=exc.errors)
        return await _ship_tos_response(request, cid, editor=editor, status_code=400)
    if not is_htmx(request):
        return RedirectResponse(f"/customers/{cid}#ship-tos", status_code=303)
    return await _ship_tos_response(request, cid, notice=notice)


async def ship_to_active(request: Request) -> Response:
    """使用停止 (retire) or 使用再開 (restore) a ship-to."""
    staff = require_staff(request)
    cid = _cid(request)
    sid = int(request.path_params["ship_to_id"])
    active = request.url.path.endswith("/restore")
    try:
        ship_to = await set_ship_to_active(
            db(request), customer_id=cid, ship_to_id=sid, active=active, staff_id=staff.id
        )
    except LookupError:
        return customer_missing(request)
    if not is_htmx(request):
        return RedirectResponse(f"/customers/{cid}#ship-tos", status_code=303)
    name = ship_to.label or ship_to.name
    notice = f"{name}の使用を再開しました。" if active else f"{name}を使用停止にしました。"
    return await _ship_tos_response(request, cid, notice=notice)


routes = [
    Route("/customers", search, methods=["GET"]),
    Route("/customers/{customer_id:int}", monitor, methods=["GET"]),
    Route("/customers/{customer_id:int}", save, methods=["POST"]),
    Route("/customers/{customer_id:int}/detail/rows/{kind}", blank_row, methods=["GET"]),
    Route("/customers/{customer_id:int}/history", history, methods=["GET"]),
    Route("/customers/{customer_id:int}/ship-tos", ship_tos, methods=["GET"]),
    Route("/customers/{customer_id:int}/ship-tos", ship_to_save, methods=["POST"]),
    Route("/customers/{customer_id:int}/ship-tos/new", ship_to_new, methods=["GET"]),
    Route(
        "/customers/{customer_id:int}/ship-tos/{ship_to_id:int}/edit",
        ship_to_edit,
        methods=["GET"],
    ),
    Route(
        "/customers/{customer_id:int}/ship-tos/{ship_to_id:int}",
        ship_to_save,
        methods=["POST"],
    ),
    Route(
        "/customers/{customer_id:int}/ship-tos/{ship_to_id:int}/retire",
        ship_to_active,
        methods=["POST"],
    ),
    Route(
        "/customers/{customer_id:int}/ship-tos/{ship_to_id:int}/restore",
        ship_to_active,
        methods=["POST"],
    ),
    Route("/postcode", postcode, methods=["GET"]),
]
