"""Call pop-up actions, presence, the call log and the response a call leaves."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from app.auth.models import Staff
from app.calls import service
from app.calls.models import PRESENCE_LABELS, Call
from app.calls.presence import SELECTABLE, get_presence, set_presence
from app.customers.duplicates import Candidate, DuplicatesFound
from app.customers.models import Customer
from app.customers.service import CustomerInputError, register_customer
from app.dates import parse_date
from app.errors import error_response
from app.events import CallChanged, PresenceChanged, ResponseSaved, publish
from app.hub import Hub
from app.inputs import ascii_int, read_form
from app.responses.models import RESPONSE_CATEGORIES, RESPONSE_CHANNELS
from app.responses.models import Response as Resp
from app.web import JST, db, render, require_staff, templates


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def _push(request: Request, deliveries: list[service.Delivery]) -> BackgroundTask | None:
    """Deliver after the response started, i.e. after the request's transaction committed."""
    if not deliveries:
        return None
    hub = _hub(request)

    async def send() -> None:
        for d in deliveries:
            await hub.deliver(d.staff_ids, d.html)

    return BackgroundTask(send)


def _toast(message: str) -> str:
    return (
        '<div id="toasts" hx-swap-oob="beforeend">'
        f'<p class="toast" role="status">{message}</p></div>'
    )


WAIT_FOR_CALL_TRIES = 50


def _call_id(request: Request) -> int:
    return int(request.path_params["call_id"])


async def _call_of_form(request: Request) -> Call | None:
    """The call a pop's button names by source and the source's call id.

    A pop goes out while its call is still being written: a click within those milliseconds
    waits for the row (up to about a second) instead of failing.
    """
    form = await read_form(request)
    source, ref = str(form.get("source", "")), str(form.get("call", ""))
    session = db(request)
    for attempt in range(WAIT_FOR_CALL_TRIES):
        call = await service.call_by_ref(session, source=source, source_call_id=ref)
        if call is not None or attempt == WAIT_FOR_CALL_TRIES - 1:
            return call
        await session.rollback()  # a fresh snapshot for the next look
        await asyncio.sleep(0.02)
    return None


def _gone(staff_id: int, request: Request) -> Response:
    toast = service.Delivery([staff_id], _toast("この着信は見つかりません。"))
    return Response(headers={"HX-Reswap": "none"}, background=_push(request, [toast]))


async def take(request: Request) -> Response:
    staff = require_staff(request)
    session = db(request)
    target = await _call_of_form(request)
    if target is None:
        return _gone(staff.id, request)
    result = await service.take_call(session, call_id=target.id, staff_id=staff.id)
    deliveries = list(result.deliveries)
    if not result.ok:
        deliveries.append(service.Delivery([staff.id], _toast(result.message)))
        return Response(
            status_code=200, headers={"HX-Reswap": "none"}, background=_push(request, deliveries)
        )
    publish(session, CallChanged(call_id=target.id))
    headers = {"HX-Reswap": "none"}
    call = result.call
    if call is not None and call.customer_id is not None:
        headers["HX-Redirect"] = f"/customers/{call.customer_id}?call={call.id}"
    return Response(status_code=200, headers=headers, background=_push(request, deliveries))


async def choose(request: Request) -> Response:
    staff = require_staff(request)
    session = db(request)
    form = await read_form(request)
    customer_id = ascii_int(form.get("customer_id"))
    if customer_id is None:
        return Response("顧客を選んでください。", status_code=400)
    call = await _call_of_form(request)
    if call is None or await session.get(Customer, customer_id) is None:
        return _gone(staff.id, request)
    call_id = call.id
    deliveries: list[service.Delivery] = []
    if call.state == "ringing":
        result = await service.take_call(session, call_id=call_id, staff_id=staff.id)
        deliveries += result.deliveries
        if not result.ok:
            deliveries.append(service.Delivery([staff.id], _toast(result.message)))
            return Response(headers={"HX-Reswap": "none"}, background=_push(request, deliveries))
    await service.choose_customer(
        session, call_id=call_id, staff_id=staff.id, customer_id=customer_id
    )
    publish(session, CallChanged(call_id=call_id))
    return Response(
        headers={"HX-Redirect": f"/customers/{customer_id}?call={call_id}"},
        background=_push(request, deliveries),
    )


def _seen_ids(raw: str) -> set[int]:
    """The candidate ids a new-customer form showed (``seen=3,17``)."""
    return {n for part in raw.split(",") if (n := ascii_int(part)) is not None}


def _new_customer_form(
    call: Call,
    form: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    candidates: list[Candidate] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The pop's new-customer form again: with the errors beside the fields, or with the
    existing customers who may be the caller (nothing has been saved)."""
    html = templates.get_template("calls/_new_customer_fields.html").render(
        call=call,
        key=service.pop_key(call.source, call.source_call_id),
        ref={"source": call.source, "call": call.source_call_id},
        caller_display=service.caller_label(call),
        errors=errors or {},
        candidates=candidates or [],
        form=form,
    )
    return HTMLResponse(
        f'<form class="pop-new" hx-post="/calls/register" hx-target="this" '
        f'hx-swap="outerHTML">{html}</form>',
        status_code=status_code,
    )


async def register(request: Request) -> Response:
    """New customer from the pop-up, with the caller's number filled in.

    Existing customers with the same phone, name or kana are shown first (名寄せ): the
    operator picks one (``/calls/choose``) or registers past them (``confirm=1`` with the
    ``seen`` ids); nothing is saved until then.
    """
    staff = require_staff(request)
    session = db(request)
    form = await read_form(request)
    data = {k: str(form.get(k, "")) for k in ("name", "kana", "phone", "phone_kind")}
    confirmed = str(form.get("confirm", "")) == "1"
    seen = _seen_ids(str(form.get("seen", ""))) if confirmed else set()
    call = await _call_of_form(request)
    if call is None:
        return _gone(staff.id, request)
    call_id = call.id
    try:
        customer = await register_customer(
            session,
            name=data["name"],
            kana=data["kana"],
            phone=data["phone"],
            phone_kind=data["phone_kind"] or "home",
            staff_id=staff.id,
            check_duplicates=True,
            known_duplicates=seen,
        )
    except CustomerInputError as exc:
        return _new_customer_form(call, data, errors=exc.errors, status_code=400)
    except DuplicatesFound as exc:
        return _new_customer_form(call, data, candidates=exc.candidates)
    deliveries: list[service.Delivery] = []
    if call.state == "ringing":
        result = await service.take_call(session, call_id=call_id, staff_id=staff.id)
        deliveries += result.deliveries
    if call.staff_id in (None, staff.id):
        call.staff_id = staff.id
        call.customer_id = customer.id
    publish(session, CallChanged(call_id=call_id))
    return Response(
        headers={"HX-Redirect": f"/customers/{customer.id}?call={call_id}"},
        background=_push(request, deliveries),
    )


async def presence_widget(request: Request) -> Response:
    staff = require_staff(request)
    p = await get_presence(db(request), staff_id=staff.id)
    return templates.TemplateResponse(
        request, "calls/_presence.html", {"presence": p, "labels": PRESENCE_LABELS}
    )


async def presence(request: Request) -> Response:
    staff = require_staff(request)
    form = await read_form(request)
    state = str(form.get("state", ""))
    if state not in SELECTABLE:
        return Response("状態を選んでください。", status_code=400)
    session = db(request)
    p = await set_presence(session, staff_id=staff.id, state=state)
    publish(session, PresenceChanged(staff_id=staff.id, state=state))
    return templates.TemplateResponse(
        request, "calls/_presence.html", {"presence": p, "labels": PRESENCE_LABELS}
    )


async def call_list(request: Request) -> Response:
    """着信履歴: today's (or a chosen day's) calls; 不在着信 waiting for a call-back first."""
    session = db(request)
    q = request.query_params
    day_s = q.get("date") or dt.datetime.now(JST).date().isoformat()
    errors: dict[str, str] = {}
    try:
        day = parse_date(day_s) or dt.datetime.now(JST).date()
    except ValueError:
        errors["date"] = "日付は YYYY-MM-DD の形式で入力してください。"
        day = dt.datetime.now(JST).date()
    start = dt.datetime.combine(day, dt.time(), JST)
    only_missed = q.get("missed") == "1"
    stmt = (
        select(Call, Customer.name, Staff.name)
        .outerjoin(Customer, Customer.id == Call.customer_id)
        .outerjoin(Staff, Staff.id == Call.staff_id)
        .order_by(Call.started_at.desc())
        .limit(500)
    )
    if only_missed:
        stmt = stmt.where(Call.callback_status == "pending")
    else:
        stmt = stmt.where(Call.started_at >= start, Call.started_at < start + dt.timedelta(days=1))
    rows = (await session.execute(stmt)).all()
    return render(
        request,
        "calls",
        {
            "rows": rows,
            "day": day,
            "only_missed": only_missed,
            "errors": errors,
            "caller_label": service.caller_label,
            "answered_elsewhere": service.answered_elsewhere,
        },
    )


async def callback_done(request: Request) -> Response:
    session = db(request)
    call = await session.get(Call, _call_id(request))
    if call is None:
        return error_response(request, 404)
    call.callback_status = "done"
    publish(session, CallChanged(call_id=call.id))
    return RedirectResponse(request.headers.get("referer") or "/calls?missed=1", status_code=303)


async def _call_page(
    request: Request,
    call: Call,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    session = db(request)
    response = await session.scalar(select(Resp).where(Resp.call_id == call.id))
    customer = await session.get(Customer, call.customer_id) if call.customer_id else None
    return render(
        request,
        "call",
        {
            "call": call,
            "response": response,
            "customer": customer,
            "caller_display": service.caller_label(call),
            "categories": RESPONSE_CATEGORIES,
            "channels": RESPONSE_CHANNELS,
            "errors": errors or {},
            "form": form,
            "saved": not errors and request.query_params.get("saved") == "1",
            "fkeys": [(1, "登録", "#response-submit")],
        },
        status_code=status_code,
    )


async def call_detail(request: Request) -> Response:
    call = await db(request).get(Call, _call_id(request))
    if call is None:
        return error_response(request, 404)
    return await _call_page(request, call)


async def save_response(request: Request) -> Response:
    """Complete the 対応履歴 a call left."""
    staff = require_staff(request)
    session = db(request)
    call = await session.get(Call, _call_id(request))
    if call is None:
        return error_response(request, 404)
    form = await read_form(request)
    category = str(form.get("category", ""))
    channel = str(form.get("channel", "電話"))
    content = str(form.get("content", "")).strip()
    answer = str(form.get("answer", "")).strip()
    errors: dict[str, str] = {}
    if category not in RESPONSE_CATEGORIES:
        errors["category"] = "区分を選んでください。"
    if channel not in RESPONSE_CHANNELS:
        errors["channel"] = "種別を選んでください。"
    if not content:
        errors["content"] = "内容を入力してください。"
    if errors:
        form_values = {
            "category": category,
            "channel": channel,
            "content": content,
            "answer": answer,
        }
        return await _call_page(request, call, errors=errors, form=form_values, status_code=400)
    response = await session.scalar(select(Resp).where(Resp.call_id == call.id))
    if response is None:
        response = Resp(
            call_id=call.id,
            customer_id=call.customer_id,
            responded_at=call.answered_at or call.started_at,
        )
        session.add(response)
    response.category = category
    response.channel = channel
    response.content = content
    response.answer = answer
    response.status = "done"
    response.staff_id = response.staff_id or staff.id
    response.customer_id = response.customer_id or call.customer_id
    publish(session, ResponseSaved(customer_id=response.customer_id, call_id=call.id))
    return RedirectResponse(f"/calls/{call.id}?saved=1", status_code=303)


routes = [
    Route("/calls", call_list, methods=["GET"]),
    Route("/calls/{call_id:int}", call_detail, methods=["GET"]),
    Route("/calls/{call_id:int}/response", save_response, methods=["POST"]),
    Route("/calls/take", take, methods=["POST"]),
    Route("/calls/choose", choose, methods=["POST"]),
    Route("/calls/register", register, methods=["POST"]),
    Route("/calls/{call_id:int}/callback-done", callback_done, methods=["POST"]),
    Route("/presence", presence_widget, methods=["GET"]),
    Route("/presence", presence, methods=["POST"]),
]
