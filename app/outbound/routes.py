"""Outbound screens: 長期放置顧客一覧 (D1), work lists (D2) and click-to-dial (C7)."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any
from urllib.parse import urlencode

from markupsafe import escape
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.audit.service import record
from app.auth.models import Staff
from app.calls.presence import get_presence
from app.csvsafe import safe_cell
from app.customers.models import Customer, CustomerPhone
from app.customers.postcodes import PREFECTURES
from app.dates import today_jst, window_error
from app.errors import error_response
from app.events import OutboundListCreated, OutboundResultSaved, publish
from app.inputs import ascii_int, read_form
from app.masters.models import Product, Rank
from app.outbound import dormant as dormant_svc
from app.outbound import service
from app.outbound.dormant import DM_CHOICES, SORTS, DormantForm
from app.outbound.models import ACTION_GROUPS, RESULTS, OutboundEntry, OutboundList
from app.responses.service import parse_datetime
from app.security import requires_role
from app.web import JST, current_staff, db, is_htmx, render, require_staff, templates
from cti_bridge.numbers import display_national
from cti_bridge.source import DialError

log = logging.getLogger("yebisu.outbound")

CSV_LIMIT = 100_000
DIALLED_KEY = "outbound_dialled_"  # session: the call id of an entry's click-to-dial
CSV_HEADER = (
    "顧客名", "コード", "住所", "最終受注日", "最終受注商品名", "個数", "金額",
    "最終アクション日", "放置日数", "最終アクション内容", "電話不可",
)  # fmt: skip


def _staff_id(request: Request) -> int:
    staff = require_staff(request)
    return staff.id


def _is_supervisor(request: Request) -> bool:
    staff = current_staff(request)
    return staff is not None and staff.has_role("supervisor")


def _query(form: DormantForm, **extra: Any) -> str:
    values = {k: v for k, v in form.values.items() if v}
    values.update({k: v for k, v in extra.items() if v not in (None, "")})
    return urlencode(values)


async def _options(request: Request) -> dict[str, Any]:
    session = db(request)
    ranks = (
        await session.execute(
            select(Rank.id, Rank.name).where(Rank.active.is_(True)).order_by(Rank.sort_order)
        )
    ).all()
    products = (
        await session.execute(
            select(Product.id, Product.code, Product.name)
            .where(Product.active.is_(True))
            .order_by(Product.code)
        )
    ).all()
    operators = (
        await session.execute(
            select(Staff.id, Staff.name)
            .where(Staff.active.is_(True), Staff.role.in_(("operator", "supervisor")))
            .order_by(Staff.id)
        )
    ).all()
    return {
        "groups": ACTION_GROUPS,
        "ranks": ranks,
        "products": products,
        "prefectures": PREFECTURES,
        "dm_choices": DM_CHOICES,
        "sorts": SORTS,
        "operators": operators,
    }


# --- 長期放置顧客一覧 ------------------------------------------------------------------------


@requires_role("operator", "supervisor")
async def dormant_page(request: Request) -> Response:
    """長期放置顧客一覧: the first page comes from one indexed query; the count follows."""
    form = dormant_svc.parse_form(request.query_params, today=today_jst())
    result = None
    if not form.errors:
        result = await dormant_svc.dormant_page(db(request), filters=form.filters, page=form.page)
    ctx = {
        **await _options(request),
        "form": form,
        "result": result,
        "query": _query(form),
        "prev_url": f"/dormant?{_query(form, page=form.page - 1)}" if form.page > 1 else "",
        "next_url": f"/dormant?{_query(form, page=form.page + 1)}"
        if result and result.has_next
        else "",
        "can_make_list": _is_supervisor(request),
        "list_errors": {},
        "list_values": {},
    }
    return render(request, "outbound/dormant", ctx, status_code=400 if form.errors else 200)


@requires_role("operator", "supervisor")
async def dormant_count(request: Request) -> Response:
    form = dormant_svc.parse_form(request.query_params, today=today_jst())
    if form.errors:
        return HTMLResponse("")
    n = await dormant_svc.count_dormant(db(request), filters=form.filters)
    return HTMLResponse(f'<span id="dormant-count">{n:,} 件</span>')


@requires_role("supervisor")
async def dormant_csv(request: Request) -> Response:
    """The whole list as CSV (UTF-8 with BOM, CRLF), in the list's order: every dormant
    customer's name and address, so for supervisors (and admin) only, as 受注一覧's CSV."""
    session = db(request)
    form = dormant_svc.parse_form(request.query_params, today=today_jst())
    if form.errors:
        return Response("検索条件を確認してください。", status_code=400)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    n = 0
    batch = 1000
    for page in range(1, CSV_LIMIT // batch + 1):
        result = await dormant_svc.dormant_page(
            session, filters=form.filters, page=page, per_page=batch
        )
        for r in result.rows:
            writer.writerow(
                (
                    safe_cell(r.name),
                    safe_cell(r.code),
                    safe_cell(r.address),
                    r.last_order_on.strftime("%Y/%m/%d") if r.last_order_on else "",
                    safe_cell(r.product),
                    "" if r.quantity is None else r.quantity,
                    "" if r.amount is None else r.amount,
                    r.last_at.astimezone(JST).strftime("%Y/%m/%d") if r.last_at else "",
                    r.days,
                    safe_cell(r.last_label),
                    "電話不可" if r.no_call else "",
                )
            )
        n += len(result.rows)
        if not result.has_next:
            break
    await record(
        session,
        action="export_dormant",
        entity="customer",
        staff_id=_staff_id(request),
        changes={"filters": form.filters.as_dict(), "rows": n},
        ip=request.client.host if request.client else "",
    )
    name = f"dormant_{form.filters.base_date:%Y%m%d}_{form.filters.days}d.csv"
    return Response(
        out.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- work lists ----------------------------------------------------------------------------


NONE_LEFT = "このリストに今かけられる顧客は残っていません。"
PRESS_NEXT = "「次の顧客」を押すと、このリストの次の顧客を開きます。"


async def _lists(request: Request, *, notice: str = "", focus: int | None = None) -> Response:
    lists = await service.lists_for(
        db(request), staff_id=_staff_id(request), everyone=_is_supervisor(request)
    )
    return render(request, "outbound/lists", {"lists": lists, "notice": notice, "focus": focus})


@requires_role("operator", "supervisor")
async def lists_page(request: Request) -> Response:
    """架電リスト: the lists this operator works on (a supervisor sees every list).
    ``?empty=<list id>``: that list just ran out of customers to call (after a result)."""
    empty = ascii_int(request.query_params.get("empty"))
    if empty is not None:
        return await _lists(request, notice=NONE_LEFT, focus=empty)
    return await _lists(request)


@requires_role("supervisor")
async def create_list(request: Request) -> Response:
    """A work list from the dormant list's filters (posted with the form)."""
    form_data = await read_form(request)
    params = {k: str(v) for k, v in form_data.items() if isinstance(v, str)}
    form = dormant_svc.parse_form(params, today=today_jst())
    name = params.get("list_name", "")
    operator_ids = [n for v in form_data.getlist("operators") if (n := ascii_int(v)) is not None]
    errors: dict[str, str] = dict(form.errors)
    lst: OutboundList | None = None
    if not errors:
        try:
            lst = await service.create_list(
                db(request),
                name=name,
                filters=form.filters,
                operator_ids=operator_ids,
                created_by=_staff_id(request),
            )
        except service.OutboundInputError as exc:
            errors = exc.errors
    if errors or lst is None:
        result = None
        if not form.errors:
            result = await dormant_svc.dormant_page(db(request), filters=form.filters, page=1)
        ctx = {
            **await _options(request),
            "form": form,
            "result": result,
            "query": _query(form),
            "prev_url": "",
            "next_url": "",
            "can_make_list": True,
            "list_errors": errors,
            "list_values": {"name": name, "operators": operator_ids},
        }
        return render(request, "outbound/dormant", ctx, status_code=400)
    publish(db(request), OutboundListCreated(list_id=lst.id))
    return RedirectResponse(f"/outbound?created={lst.id}", status_code=303)


async def _claim_next(request: Request, list_id: int) -> str | None:
    """Claim this operator's next entry of the list: the URL of its work screen (the customer
    monitor in outbound mode, whose banner dials and takes the result), or None when no
    customer can be called now."""
    entry = await service.next_entry(db(request), list_id=list_id, staff_id=_staff_id(request))
    if entry is None:
        return None
    return f"/customers/{entry.customer_id}?outbound={entry.id}"


@requires_role("operator", "supervisor")
async def next_customer(request: Request) -> Response:
    """次の顧客: a POST claims the next entry and opens its work screen. A GET (a link, a
    reload, a prefetch) claims nothing: it shows the lists with this list's 次の顧客 button
    focused, so Enter goes on."""
    list_id = int(request.path_params["list_id"])
    if not await service.can_work(
        db(request), list_id=list_id, staff_id=_staff_id(request), everyone=_is_supervisor(request)
    ):
        return Response("このリストの担当ではありません。", status_code=403)
    if request.method != "POST":
        return await _lists(request, notice=PRESS_NEXT, focus=list_id)
    target = await _claim_next(request, list_id)
    if target is None:
        return await _lists(request, notice=NONE_LEFT, focus=list_id)
    return RedirectResponse(target, status_code=303)


async def _banner_context(request: Request, entry: OutboundEntry) -> dict[str, Any]:
    session = db(request)
    lst = await session.get(OutboundList, entry.list_id)
    phones = (
        await session.scalars(
            select(CustomerPhone)
            .where(CustomerPhone.customer_id == entry.customer_id, CustomerPhone.kind != "fax")
            .order_by(CustomerPhone.position)
        )
    ).all()
    runtime = getattr(request.app.state, "cti", None)
    return {
        "entry": entry,
        "work_list": lst,
        "phones": [(p, display_national(p.e164) if p.e164 else p.raw) for p in phones],
        "results": RESULTS,
        "can_dial": bool(runtime is not None and runtime.can_dial()),
        "errors": {},
        "form": {},
    }


async def _entry(request: Request) -> OutboundEntry | None:
    entry = await db(request).get(OutboundEntry, int(request.path_params["entry_id"]))
    if entry is None:
        return None
    if not await service.can_work(
        db(request),
        list_id=entry.list_id,
        staff_id=_staff_id(request),
        everyone=_is_supervisor(request),
    ):
        return None
    return entry


@requires_role("operator", "supervisor")
async def entry_banner(request: Request) -> Response:
    """The outbound banner the customer monitor shows in outbound mode (``?outbound=``)."""
    entry = await _entry(request)
    if entry is None:
        return HTMLResponse("")
    ctx = await _banner_context(request, entry)
    return templates.TemplateResponse(request, "outbound/_banner.html", ctx)


@requires_role("operator", "supervisor")
async def dial(request: Request) -> Response:
    """発信 (C7): Originate to the operator's extension through the PBX, or ATD on a modem;
    without a dial-capable source the page keeps its ``tel:`` link."""
    entry = await _entry(request)
    if entry is None:
        return error_response(request, 404)
    session = db(request)
    form = await read_form(request)
    phone_id = ascii_int(form.get("phone"))
    customer = await session.get(Customer, entry.customer_id)
    phone = await session.get(CustomerPhone, phone_id) if phone_id is not None else None
    if customer is None or phone is None or phone.customer_id != customer.id:
        return HTMLResponse(
            '<p class="dial-status error" id="dial-status">電話番号を選んでください。</p>',
            status_code=400,
        )
    if customer.no_call:
        return HTMLResponse(
            '<p class="dial-status error" id="dial-status">この顧客は電話不可です。</p>',
            status_code=409,
        )
    staff = require_staff(request)
    presence = await get_presence(session, staff_id=staff.id)
    extension = presence.extension if presence is not None else staff.extension
    raw_number = phone.e164 or phone.raw
    number = escape(raw_number)
    shown = escape(display_national(phone.e164) if phone.e164 else phone.raw)
    runtime = getattr(request.app.state, "cti", None)
    if runtime is None or not runtime.can_dial():
        message = f'<a href="tel:{number}">{shown}</a> をクリックして発信してください。'
        return HTMLResponse(f'<p class="dial-status" id="dial-status">{message}</p>')
    registered = await session.scalar(select(Staff.extension).where(Staff.id == staff.id))
    if presence is not None and not extension and registered:
        # Taken over by another log-in (a blank at log-in binds the registered extension).
        return HTMLResponse(
            '<p class="dial-status error" id="dial-status">内線がほかの担当者に引き継がれたため'
            "発信できません。ログインし直して内線を指定してください。</p>",
            status_code=409,
        )
    try:
        call_id = await runtime.dial(extension or None, raw_number, line=staff.line)
    except DialError as exc:
        log.warning("click-to-dial failed: %s", exc)
        return HTMLResponse(
            '<p class="dial-status error" id="dial-status">発信できませんでした（交換機に'
            f'接続できません）。<a href="tel:{number}">{shown}</a> から発信してください。</p>',
            status_code=409,
        )
    log.info("click-to-dial %s: extension %s", call_id, extension)
    # The result of this attempt names this call (the source's call id).
    request.session[f"{DIALLED_KEY}{entry.id}"] = call_id
    return HTMLResponse(
        '<p class="dial-status" id="dial-status">'
        f"発信中: 内線 {escape(extension or '—')} を呼び出しています（{shown}）。"
        "受話器を取ると相手につながります。</p>"
    )


@requires_role("operator", "supervisor")
async def save_result(request: Request) -> Response:
    """結果: recorded as an action (電話) on the customer; 次の顧客 follows."""
    entry = await _entry(request)
    if entry is None:
        return error_response(request, 404)
    form = await read_form(request)
    values = {k: str(form.get(k, "")).strip() for k in ("result", "callback_at", "note", "next")}
    errors: dict[str, str] = {}
    callback_at = None
    try:
        callback_at = parse_datetime(values["callback_at"])
    except ValueError:
        errors["callback_at"] = "再コール日時は YYYY/MM/DD HH:MM の形式で入力してください。"
    if callback_at is not None and (
        far := window_error(
            callback_at.astimezone(JST).date(), around=today_jst(), label="再コール日時"
        )
    ):
        errors["callback_at"] = far
    if not errors:
        try:
            await service.record_result(
                db(request),
                entry_id=entry.id,
                staff_id=_staff_id(request),
                result=values["result"],
                callback_at=callback_at,
                note=values["note"],
                dialled=str(request.session.get(f"{DIALLED_KEY}{entry.id}", "")),
            )
        except service.OutboundInputError as exc:
            errors = exc.errors
    if errors:  # the banner shows the messages beside its fields
        ctx = await _banner_context(request, entry)
        ctx["errors"] = errors
        ctx["form"] = values
        return templates.TemplateResponse(request, "outbound/_banner.html", ctx, status_code=400)
    request.session.pop(f"{DIALLED_KEY}{entry.id}", None)
    publish(db(request), OutboundResultSaved(entry_id=entry.id))
    target = "/outbound"
    if values["next"] == "1":  # 登録して次の顧客: claimed here, in this POST
        target = await _claim_next(request, entry.list_id) or f"/outbound?empty={entry.list_id}"
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


routes: list[BaseRoute] = [
    Route("/dormant", dormant_page, methods=["GET"]),
    Route("/dormant/count", dormant_count, methods=["GET"]),
    Route("/dormant.csv", dormant_csv, methods=["GET"]),
    Route("/outbound", lists_page, methods=["GET"]),
    Route("/outbound/lists", create_list, methods=["POST"]),
    Route("/outbound/lists/{list_id:int}/next", next_customer, methods=["GET", "POST"]),
    Route("/outbound/entries/{entry_id:int}/banner", entry_banner, methods=["GET"]),
    Route("/outbound/entries/{entry_id:int}/dial", dial, methods=["POST"]),
    Route("/outbound/entries/{entry_id:int}/result", save_result, methods=["POST"]),
]
