"""受注入力 tab of the customer monitor (O1–O4, 再注文 O2) and the product look-up.

The form re-renders itself on every change (``…/order/form``), ``…/order/confirm`` shows the
入力確認 summary, ``POST …/order`` registers the order (idempotent). For htmx requests the
POST routes answer with the ``#order-entry`` fragment; without htmx they render the whole tab.
"""

from __future__ import annotations

import datetime as dt
from itertools import zip_longest
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.calls.models import Call
from app.config import OrdersConfig
from app.customers.models import Customer
from app.errors import error_response
from app.events import OrderPlaced, publish
from app.inputs import ascii_int, form_text, read_form
from app.masters.models import Carrier
from app.monitor.service import current_call
from app.monitor.web import call_param, customer_missing, monitor_frame, render_tab, tab_url
from app.orders import service
from app.orders.models import Order
from app.orders.pricing import TAX_RATES
from app.orders.service import (
    Draft,
    DraftInput,
    LineInput,
    OrderInputError,
)
from app.web import JST, db, is_htmx, require_staff, templates

TEMPLATE = "order_entry"
ENTRY = "order_entry/_entry.html"
PRIMARY = ("登録", "#order-f1")
SCALAR_FIELDS = (
    "idempotency_key",
    "slip_type",
    "interval",
    "interval_n",
    "day_of_month",
    "carrier",
    "origin",
    "ship_to",
    "ad",
    "category",
    "allocation",
    "received_on",
    "ship_on",
    "ship_auto",
    "deliver_on",
    "deliver_auto",
    "time_slot",
    "payment",
    "note",
)
# Where the cursor goes for a message about a field.
FIELD_IDS = {
    "slip_type": "order-slip-normal",
    "interval": "order-interval",
    "interval_n": "order-interval-n",
    "day_of_month": "order-dom",
    "ship_to": "order-ship-to",
    "origin": "order-origin-select",
    "ad": "order-ad",
    "category": "order-category",
    "allocation": "order-allocation",
    "received_on": "order-received",
    "ship_on": "order-ship-on",
    "deliver_on": "order-deliver-on",
    "time_slot": "order-time-slot",
    "note": "order-note",
    "lines": "line-0-code",
}


def _now() -> dt.datetime:
    return dt.datetime.now(JST)


def _orders(request: Request) -> OrdersConfig:
    config: OrdersConfig = request.app.state.settings.orders
    return config


def _int(raw: str | None) -> int | None:
    return ascii_int(raw)


def parse_form(form: FormData) -> DraftInput:
    """The order form as typed; ``remove`` drops that line."""

    def texts(name: str) -> list[str]:
        return [v if isinstance(v, str) else "" for v in form.getlist(name)]

    lines = [
        LineInput(code=c, quantity=q, unit_price=p, base=b)
        for c, q, p, b in zip_longest(
            texts("code"), texts("qty"), texts("price"), texts("base"), fillvalue=""
        )
    ]
    remove = _int(form_text(form, "remove"))
    if remove is not None and remove < len(lines):
        del lines[remove]
    data = DraftInput(lines=lines)
    for name in SCALAR_FIELDS:
        if name in form:
            setattr(data, name, form_text(form, name))
    return data


def _urls(customer_id: int, call: Call | None) -> dict[str, str]:
    base = f"/customers/{customer_id}/order"
    q = f"?call={call.id}" if call is not None else ""
    return {
        "tab": base + q,
        "form": f"{base}/form{q}",
        "confirm": f"{base}/confirm{q}",
        "submit": base + q,
        "suggest": "/products/suggest",
        "purchases": tab_url(customer_id, "purchases", call),
        "orders": tab_url(customer_id, "orders", call),
    }


def _with(url: str, **params: Any) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _focus_for(draft: Draft, errors: dict[str, str]) -> str:
    """The field the cursor goes to: the first one with a message."""
    for key in errors:
        if key.startswith("line-"):
            return key
        if key == "carrier":
            return f"order-carrier-{draft.choices.carriers[0][0]}" if draft.choices.carriers else ""
        if key == "payment":
            return "order-payment-cod"
        if key in FIELD_IDS:
            return FIELD_IDS[key]
    return ""


def _context(
    customer_id: int,
    call: Call | None,
    *,
    view: str,
    draft: Draft | None = None,
    errors: dict[str, str] | None = None,
    focus: str = "",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "view": view,
        "customer_id": customer_id,
        "draft": draft,
        "errors": errors or {},
        "focus": focus,
        "urls": _urls(customer_id, call),
        "labels": {
            "slip": service.SLIP_TYPES,
            "payment": service.PAYMENT_METHODS,
            "time_slot": service.TIME_SLOTS,
            "category": service.CATEGORIES,
            "allocation": service.ALLOCATIONS,
            "interval": service.INTERVALS,
            "tax": TAX_RATES,
        },
        "notice": "",
        **extra,
    }


async def _respond(
    request: Request, customer_id: int, ctx: dict[str, Any], *, status: int = 200
) -> Response:
    """The ``#order-entry`` fragment for htmx, else the whole monitor tab."""
    if is_htmx(request):
        return templates.TemplateResponse(request, ENTRY, ctx, status_code=status)
    return await render_tab(
        request,
        customer_id=customer_id,
        tab="order",
        template=TEMPLATE,
        context=ctx,
        primary=PRIMARY,
        status_code=status,
    )


def _visible(errors: dict[str, str]) -> dict[str, str]:
    """While typing, "no products yet" is not worth a message."""
    return {k: v for k, v in errors.items() if k != "lines"}


async def _draft(request: Request, customer_id: int, data: DraftInput) -> Draft:
    return await service.build_draft(
        db(request), customer_id=customer_id, data=data, orders=_orders(request), now=_now()
    )


async def _posted(request: Request) -> tuple[int, Call | None, DraftInput] | Response:
    """Customer, call and the posted form of a POST route, or a 404 response."""
    staff = require_staff(request)
    session = db(request)
    customer_id = int(request.path_params["customer_id"])
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return error_response(request, 404, message="顧客が見つかりません。")
    # Held for the request: the session's identity map is weak, and the draft reads the
    # customer again (by primary key: from the map while it is held, without a query).
    request.state.customer = customer
    call = await current_call(
        session, call_id=call_param(request), staff_id=staff.id, customer_id=customer_id
    )
    return customer_id, call, parse_form(await read_form(request))


# --- routes -------------------------------------------------------------------------------------


async def order_tab(request: Request) -> Response:
    """受注入力 tab: an empty form, or ``?reorder=`` (with its question first) / ``?subscription=``
    prefilled."""
    session = db(request)
    customer_id = int(request.path_params["customer_id"])
    frame = await monitor_frame(request, customer_id)
    header, call = frame
    if header is None:
        return customer_missing(request)
    orders = _orders(request)
    today = _now().date()
    params = request.query_params
    notice = ""
    data: DraftInput | None = None
    reorder = _int(params.get("reorder"))
    subscription = _int(params.get("subscription"))
    if reorder is not None and params.get("go") != "1":
        order = await session.scalar(
            select(Order)
            .options(selectinload(Order.lines))
            .where(Order.id == reorder, Order.customer_id == customer_id)
        )
        if order is not None:
            carrier = await session.get(Carrier, order.carrier_id) if order.carrier_id else None
            ctx = _context(
                customer_id,
                call,
                view="reorder",
                order=order,
                carrier_name=carrier.name if carrier else "",
                yes_url=_with(_urls(customer_id, call)["tab"], reorder=order.id, go=1),
            )
            return await render_tab(
                request,
                customer_id=customer_id,
                tab="order",
                template=TEMPLATE,
                context=ctx,
                primary=PRIMARY,
                frame=frame,
            )
        notice = "指定の受注はこの顧客の受注ではないか、見つかりません。"
    elif reorder is not None:
        data = await service.draft_from_order(
            session, customer_id=customer_id, order_id=reorder, orders=orders, today=today
        )
        if data is None:
            notice = "指定の受注はこの顧客の受注ではないか、見つかりません。"
    elif subscription is not None:
        data = await service.draft_from_subscription(
            session,
            customer_id=customer_id,
            subscription_id=subscription,
            orders=orders,
            today=today,
        )
        if data is None:
            notice = "指定の定期はこの顧客の定期ではないか、見つかりません。"
    if data is None:
        data = await service.new_draft_input(
            session, customer_id=customer_id, orders=orders, today=today
        )
    draft = await _draft(request, customer_id, data)
    ctx = _context(
        customer_id,
        call,
        view="form",
        draft=draft,
        errors=_visible(draft.errors),
        focus=f"line-{len(draft.rows)}-code" if draft.rows else "line-0-code",
        notice=notice,
    )
    return await render_tab(
        request,
        customer_id=customer_id,
        tab="order",
        template=TEMPLATE,
        context=ctx,
        primary=PRIMARY,
        frame=frame,
    )


async def order_form(request: Request) -> Response:
    """Recompute: the form again with lines expanded, fees, dates and totals (also いいえ from
    the confirmation, ``back=1``, which puts the cursor on the first line)."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    customer_id, call, data = posted
    form = await read_form(request)
    draft = await _draft(request, customer_id, data)
    back = form.get("back") == "1"
    ctx = _context(
        customer_id,
        call,
        view="form",
        draft=draft,
        errors=_visible(draft.errors),
        focus="line-0-code" if back else "",
    )
    return await _respond(request, customer_id, ctx)


async def order_confirm(request: Request) -> Response:
    """入力確認: the read-only summary, or the form with its messages (HTTP 400)."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    customer_id, call, data = posted
    draft = await _draft(request, customer_id, data)
    if draft.errors:
        ctx = _context(
            customer_id,
            call,
            view="form",
            draft=draft,
            errors=draft.errors,
            focus=_focus_for(draft, draft.errors),
        )
        return await _respond(request, customer_id, ctx, status=400)
    return await _respond(
        request, customer_id, _context(customer_id, call, view="confirm", draft=draft)
    )


async def order_submit(request: Request) -> Response:
    """はい: register the order (idempotent) and show its number."""
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    customer_id, call, data = posted
    staff = require_staff(request)
    try:
        result = await service.submit_order(
            db(request),
            customer_id=customer_id,
            data=data,
            staff_id=staff.id,
            call_id=call.id if call is not None else None,
            orders=_orders(request),
            now=_now(),
        )
    except OrderInputError as exc:
        draft = exc.draft or await _draft(request, customer_id, data)
        errors = {**draft.errors, **exc.errors}
        ctx = _context(
            customer_id,
            call,
            view="form",
            draft=draft,
            errors=errors,
            focus=_focus_for(draft, errors),
        )
        return await _respond(request, customer_id, ctx, status=400)
    order = result.order
    carrier_name = result.carrier_name
    if carrier_name is None:
        carrier = await db(request).get(Carrier, order.carrier_id) if order.carrier_id else None
        carrier_name = carrier.name if carrier else ""
    ctx = _context(
        customer_id,
        call,
        view="done",
        order=order,
        created=result.created,
        carrier_name=carrier_name,
        campaigns=result.campaigns,
        focus="order-f1",
    )
    response = await _respond(request, customer_id, ctx)
    if result.created:  # after the commit, the supervisors' boards count the new order
        publish(db(request), OrderPlaced(order_id=order.id, customer_id=customer_id))
    return response


async def product_suggest(request: Request) -> Response:
    """The suggestion list under a 商品コード field (code prefix, name or kana)."""
    today = _now().date()
    on = service.parse_date(request.query_params.get("on", ""), today=today) or today
    products = await service.product_suggestions(
        db(request), q=request.query_params.get("q", ""), on=on
    )
    return templates.TemplateResponse(request, "order_entry/_suggest.html", {"products": products})


routes = [
    Route("/customers/{customer_id:int}/order", order_tab, methods=["GET"]),
    Route("/customers/{customer_id:int}/order", order_submit, methods=["POST"]),
    Route("/customers/{customer_id:int}/order/form", order_form, methods=["POST"]),
    Route("/customers/{customer_id:int}/order/confirm", order_confirm, methods=["POST"]),
    Route("/products/suggest", product_suggest, methods=["GET"]),
]
