"""購入履歴 and 受注一覧: the monitor's purchases and orders tabs, the global 受注一覧 page and
its CSV download."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.audit.service import record
from app.calls.models import Call
from app.csvsafe import safe_cell
from app.dates import parse_date, today_jst
from app.inputs import ascii_int
from app.monitor.web import customer_missing, monitor_frame, render_tab
from app.orders.history import (
    OrderFilter,
    count_orders,
    order_list,
    order_list_options,
    purchase_lines,
)
from app.security import requires_role
from app.web import current_staff, db, render, templates

PER_PAGE = 50
CSV_LIMIT = 100_000
EXPORT_ROLES = ("supervisor", "backoffice")  # admin always; operators do not export lists
LIST_TARGET = "order-list"
SLIP_CHOICES = (("", "すべて"), ("normal", "通常"), ("subscription", "定期"))
FILTER_KEYS = ("from", "to", "slip", "carrier", "entered_by", "owner", "code", "name")


def page_param(request: Request, name: str = "page") -> int:
    """A 1-based page number from the query string (anything else is page 1)."""
    raw = request.query_params.get(name, "")
    return max(1, ascii_int(raw, max_digits=6) or 1)


def with_call(url: str, call: Call | None) -> str:
    """``url`` carrying the call the monitor was opened from."""
    if call is None:
        return url
    return f"{url}{'&' if '?' in url else '?'}call={call.id}"


@dataclass
class ListForm:
    """The 受注一覧 conditions as typed (``values``), as parsed, and per-field errors."""

    values: dict[str, str]
    filters: OrderFilter
    errors: dict[str, str]

    def query(self, **extra: Any) -> str:
        pairs = [(k, v) for k, v in self.values.items() if v or k in ("from", "to")]
        pairs += [(k, str(v)) for k, v in extra.items() if v is not None]
        return urlencode(pairs)


def parse_list_form(params: Mapping[str, str], *, today: dt.date) -> ListForm:
    """Read the 受注一覧 filters. 受付日 defaults to today when absent; a blank date leaves
    that end open."""
    values = {k: params.get(k, "").strip() for k in FILTER_KEYS}
    if "from" not in params:
        values["from"] = today.isoformat()
    if "to" not in params:
        values["to"] = today.isoformat()
    errors: dict[str, str] = {}
    dates: dict[str, dt.date | None] = {}
    for key in ("from", "to"):
        try:
            day = parse_date(values[key])
            dates[key] = day
            values[key] = day.isoformat() if day is not None else ""
        except ValueError:
            dates[key] = None
            errors[key] = "日付は 2025/04/01 の形で入力してください。"
    if not errors and dates["from"] and dates["to"] and dates["from"] > dates["to"]:
        errors["to"] = "終了日は開始日以降の日付にしてください。"
    slip = values["slip"]
    if slip not in {c for c, _ in SLIP_CHOICES}:
        errors["slip"] = "伝票区分を選んでください。"
        slip = ""
    ids: dict[str, int | None] = {}
    for key in ("carrier", "entered_by", "owner"):
        raw = values[key]
        ids[key] = ascii_int(raw)
        if raw and ids[key] is None:
            errors[key] = "一覧から選んでください。"
    filters = OrderFilter(
        date_from=dates["from"],
        date_to=dates["to"],
        slip_type=slip,
        carrier_id=ids["carrier"],
        entered_by=ids["entered_by"],
        owner_id=ids["owner"],
        customer_code=values["code"],
        customer_name=values["name"],
    )
    return ListForm(values=values, filters=filters, errors=errors)


async def _list_context(
    request: Request, *, list_url: str, customer_id: int | None, call: Call | None
) -> tuple[dict[str, Any], int]:
    """Context of the 受注一覧 (filters and a page of results) and the status code."""
    session = db(request)
    form = parse_list_form(request.query_params, today=today_jst())
    page = page_param(request)
    result = None
    if not form.errors:
        result = await order_list(session, filters=form.filters, page=page, per_page=PER_PAGE)
    staff = current_staff(request)
    extra_call = call.id if call is not None else None

    def page_url(n: int) -> str:
        return f"{list_url}?{form.query(page=n, call=extra_call)}"

    ctx = {
        "form": form,
        "result": result,
        "options": await order_list_options(session),
        "slip_choices": SLIP_CHOICES,
        "list_url": list_url,
        "page_url": page_url,
        "csv_url": f"/orders.csv?{form.query()}",
        "may_export": staff is not None and staff.has_role(*EXPORT_ROLES),
        "current_customer_id": customer_id,
        "call": call,
        "list_target": LIST_TARGET,
        "autofocus_filters": not _wants_list_only(request),
    }
    return ctx, (400 if form.errors else 200)


def _wants_list_only(request: Request) -> bool:
    return request.headers.get("HX-Target") == LIST_TARGET


async def purchases_tab(request: Request) -> Response:
    """購入履歴 (H4): every order line of the customer, newest order first, with 再注文."""
    cid = int(request.path_params["customer_id"])
    frame = await monitor_frame(request, cid)
    if frame[0] is None:
        return customer_missing(request)
    call = frame[1]
    result = await purchase_lines(
        db(request), customer_id=cid, page=page_param(request), per_page=PER_PAGE
    )

    def page_url(n: int) -> str:
        return with_call(f"/customers/{cid}/purchases?page={n}", call)

    def reorder_url(order_id: int) -> str:
        return with_call(f"/customers/{cid}/order?reorder={order_id}", call)

    return await render_tab(
        request,
        customer_id=cid,
        tab="purchases",
        template="purchases_tab",
        context={"result": result, "page_url": page_url, "reorder_url": reorder_url},
        # F1 re-orders the newest order (the order-entry tab asks for confirmation first).
        primary=("再注文", "#purchases a.reorder") if result.orders else None,
        frame=frame,
    )


async def orders_tab(request: Request) -> Response:
    """受注一覧 inside the monitor: everyone's orders (the day's by default), this customer's
    rows highlighted."""
    cid = int(request.path_params["customer_id"])
    frame = await monitor_frame(request, cid)
    if frame[0] is None:
        return customer_missing(request)
    ctx, status = await _list_context(
        request, list_url=f"/customers/{cid}/orders", customer_id=cid, call=frame[1]
    )
    if _wants_list_only(request):
        return templates.TemplateResponse(request, "order_list/_list.html", ctx, status_code=status)
    return await render_tab(
        request,
        customer_id=cid,
        tab="orders",
        template="order_list",
        context=ctx,
        primary=("検索", "#orders-from"),
        status_code=status,
        frame=frame,
    )


async def orders_page(request: Request) -> Response:
    """受注一覧 (O5) from the main menu."""
    ctx, status = await _list_context(request, list_url="/orders", customer_id=None, call=None)
    if _wants_list_only(request):
        return templates.TemplateResponse(request, "order_list/_list.html", ctx, status_code=status)
    ctx["fkeys"] = [(1, "検索", "#orders-from"), (9, "顧客検索", "/customers")]
    return render(request, "orders_page", ctx, status_code=status)


CSV_HEADER = (
    "受注番号",
    "伝票種別",
    "受注日",
    "出荷予定日",
    "お届け予定日",
    "顧客コード",
    "顧客名",
    "住所",
    "発送先",
    "送付先名",
    "広告",
    "商品名",
    "個数",
    "金額",
    "配送方法",
    "入金",
    "状態",
    "入力者",
)


def _ymd(d: dt.date | None) -> str:
    return d.strftime("%Y/%m/%d") if d is not None else ""


@requires_role(*EXPORT_ROLES)
async def orders_csv(request: Request) -> Response:
    """The filtered 受注一覧 as CSV (UTF-8 with BOM and CRLF, so Excel opens it as is)."""
    session = db(request)
    form = parse_list_form(request.query_params, today=today_jst())
    if not form.errors:
        n = await count_orders(session, filters=form.filters)
        if n > CSV_LIMIT:
            form.errors["from"] = (
                f"CSV は {CSV_LIMIT:,} 件までです（{n:,} 件）。期間を絞ってください。"
            )
    if form.errors:
        ctx, _ = await _list_context(request, list_url="/orders", customer_id=None, call=None)
        ctx["form"] = form
        ctx["result"] = None
        return render(request, "orders_page", ctx, status_code=400)
    result = await order_list(session, filters=form.filters, page=1, per_page=CSV_LIMIT)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in result.rows:
        writer.writerow(
            (
                r.number,
                r.slip_label,
                _ymd(r.received_on),
                _ymd(r.ship_on),
                _ymd(r.deliver_on),
                safe_cell(r.customer_code),
                safe_cell(r.customer_name),
                safe_cell(r.address),
                r.destination,
                safe_cell(r.ship_to_name),
                safe_cell(r.ad_name),
                safe_cell(r.products),
                r.quantity,
                r.total,
                r.carrier,
                r.payment_label,
                r.status_label,
                safe_cell(r.entered_by),
            )
        )
    staff = current_staff(request)
    await record(
        session,
        action="export_orders",
        entity="order",
        staff_id=staff.id if staff else None,
        changes={"filters": form.values, "rows": len(result.rows)},
        ip=request.client.host if request.client else "",
    )
    f = form.filters
    span = "_".join(d.strftime("%Y%m%d") for d in (f.date_from, f.date_to) if d is not None)
    name = f"orders_{span or 'all'}.csv"
    return Response(
        out.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


routes = [
    Route("/customers/{customer_id:int}/purchases", purchases_tab, methods=["GET"]),
    Route("/customers/{customer_id:int}/orders", orders_tab, methods=["GET"]),
    Route("/orders", orders_page, methods=["GET"]),
    Route("/orders.csv", orders_csv, methods=["GET"]),
]
