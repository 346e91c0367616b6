"""定期: the monitor's 定期情報 tab (S1, S4, S5) — the customer's subscriptions, a new one,
changes with the terms read before confirming, delivery history — and 定期発送一覧 (S3) with
its 実行 button, CSV and PDF."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm.exc import StaleDataError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.audit.service import record
from app.dates import parse_date
from app.db import transaction
from app.inputs import read_form
from app.monitor.web import customer_missing, monitor_frame, render_tab
from app.orders.history_routes import page_param, with_call
from app.runs.service import JobError, create_run
from app.security import requires_role
from app.subscriptions.changes import (
    OPERATIONS,
    ChangeInput,
    NewInput,
    SubscriptionConflict,
    SubscriptionInputError,
    change_subscription,
    create_subscription,
    form_choices,
    interval_key,
    plan_change,
    plan_new,
)
from app.subscriptions.models import Subscription
from app.subscriptions.service import customer_subscriptions, delivery_history
from app.subscriptions.shipments import shipments, shipments_csv, shipments_pdf
from app.web import JST, current_staff, db, render, require_staff, templates

PER_PAGE = 50  # delivery-history orders a page
LIST_PER_PAGE = 100  # 定期発送一覧 rows a page
LIST_ROLES = ("supervisor", "backoffice")  # admin always
EARLY_DAYS = 7  # 定期発送一覧's 実行 may make a day's orders this many days early
ITEM_ROWS = 3


def _now() -> dt.datetime:
    return dt.datetime.now(JST)


# --- the monitor tab --------------------------------------------------------------------------


async def _tab(
    request: Request,
    cid: int,
    frame: Any,
    *,
    panel: str = "",
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """The 定期情報 tab, with ``panel`` (a template under subscriptions/) above the list."""
    call = frame[1]
    session = db(request)
    today = _now().date()
    subs = await customer_subscriptions(session, customer_id=cid, today=today)
    history = await delivery_history(
        session, customer_id=cid, page=page_param(request), per_page=PER_PAGE
    )

    def order_url(subscription_id: int) -> str:
        return with_call(f"/customers/{cid}/order?subscription={subscription_id}", call)

    def page_url(n: int) -> str:
        return with_call(f"/customers/{cid}/subscriptions?page={n}", call)

    def sub_url(path: str = "") -> str:
        return with_call(f"/customers/{cid}/subscriptions{path}", call)

    return await render_tab(
        request,
        customer_id=cid,
        tab="subscriptions",
        template="subscriptions_tab",
        context={
            "subscriptions": subs,
            "history": history,
            "order_url": order_url,
            "page_url": page_url,
            "sub_url": sub_url,
            "panel": f"subscriptions/{panel}.html" if panel else "",
            **(context or {}),
        },
        primary=("新規登録", "#subscription-new") if not panel else None,
        status_code=status_code,
        frame=frame,
    )


async def subscriptions_tab(request: Request) -> Response:
    """定期情報 (S1, S5): the customer's subscriptions with the next delivery date, a 受注へ
    and a 変更 link each, 新規登録, and the orders they made with 何回目."""
    cid = int(request.path_params["customer_id"])
    frame = await monitor_frame(request, cid)
    if frame[0] is None:
        return customer_missing(request)
    return await _tab(request, cid, frame)


def _new_input(form: FormData | None, today: dt.date) -> NewInput:
    if form is None:
        return NewInput(
            start_month=f"{today:%Y/%m}",
            codes=[""] * ITEM_ROWS,
            quantities=["1"] * ITEM_ROWS,
        )
    return NewInput(
        start_month=str(form.get("start_month", "")),
        interval=str(form.get("interval", "m1")),
        interval_n=str(form.get("interval_n", "")),
        day=str(form.get("day", "")),
        codes=[str(x) for x in form.getlist("code")],
        quantities=[str(x) for x in form.getlist("quantity")],
        ship_to=str(form.get("ship_to", "")),
        payment=str(form.get("payment", "cod")),
        carrier=str(form.get("carrier", "")),
    )


async def subscription_new(request: Request) -> Response:
    """新規登録 (S1): the form; 確認 shows the next delivery and the terms to read to the
    customer; 確定 registers it (対応履歴 定期変更 and the customer's history)."""
    cid = int(request.path_params["customer_id"])
    frame = await monitor_frame(request, cid)
    if frame[0] is None:
        return customer_missing(request)
    session = db(request)
    now = _now()
    choices = await form_choices(session, customer_id=cid)
    settings = request.app.state.settings
    form = await read_form(request) if request.method == "POST" else None
    data = _new_input(form, now.date())
    if form is None and not data.carrier:
        codes = [c for c, _ in choices.carriers]
        default = settings.orders.default_carrier
        data.carrier = default if default in codes or not codes else codes[0]
        data.payment = settings.orders.default_payment
    while len(data.codes) < ITEM_ROWS:
        data.codes.append("")
        data.quantities.append("1")
    ctx: dict[str, Any] = {"data": data, "choices": choices, "errors": {}}
    step = str(form.get("step", "")) if form is not None else ""
    if form is None or step == "edit":
        return await _tab(request, cid, frame, panel="_new", context=ctx)
    try:
        if step == "save":
            staff = require_staff(request)
            call = frame[1]
            sub = await create_subscription(
                session,
                customer_id=cid,
                data=data,
                staff_id=staff.id,
                call_id=call.id if call is not None else None,
                now=now,
            )
            notice = f"定期No.{sub.id}を登録しました。次回配送日 {sub.next_date:%Y/%m/%d}"
            return await _tab(request, cid, frame, context={"notice": notice})
        plan = await plan_new(session, customer_id=cid, data=data, today=now.date())
    except SubscriptionInputError as exc:
        ctx["errors"] = exc.errors
        return await _tab(request, cid, frame, panel="_new", context=ctx, status_code=422)
    ctx["plan"] = plan
    ctx["terms"] = plan.terms
    return await _tab(request, cid, frame, panel="_new_confirm", context=ctx)


async def _subscription_of(request: Request, cid: int) -> Subscription | None:
    sid = int(request.path_params["subscription_id"])
    sub = await db(request).get(Subscription, sid)
    return sub if sub is not None and sub.customer_id == cid else None


def _change_input(form: FormData) -> ChangeInput:
    return ChangeInput(
        op=str(form.get("op", "")),
        version=str(form.get("version", "")),
        interval=str(form.get("interval", "")),
        interval_n=str(form.get("interval_n", "")),
        day=str(form.get("day", "")),
        until=str(form.get("until", "")),
        reason=str(form.get("reason", "")),
        note=str(form.get("note", "")),
    )


async def subscription_detail(request: Request) -> Response:
    """One subscription (S4, S5): its schedule and products, the changes (配送間隔・配送日,
    スキップ, 休止, 再開, 解約) each confirmed with the terms, and its deliveries."""
    cid = int(request.path_params["customer_id"])
    frame = await monitor_frame(request, cid)
    if frame[0] is None:
        return customer_missing(request)
    session = db(request)
    sub = await _subscription_of(request, cid)
    if sub is None:
        return await _tab(
            request, cid, frame, context={"warning": "定期が見つかりません。"}, status_code=404
        )
    now = _now()
    views = await customer_subscriptions(session, customer_id=cid, today=now.date())
    view = next(v for v in views if v.id == sub.id)
    history = await delivery_history(
        session, customer_id=cid, subscription_id=sub.id, page=1, per_page=500
    )
    ctx: dict[str, Any] = {
        "sub": view,
        "version": sub.version,
        "interval_key": interval_key(sub.interval_unit, sub.interval_n),
        "choices": await form_choices(session, customer_id=cid),
        "sub_history": history,
        "operations": OPERATIONS,
        "errors": {},
        "typed": {},
    }
    if request.method != "POST":
        return await _tab(request, cid, frame, panel="_detail", context=ctx)
    form = await read_form(request)
    data = _change_input(form)
    ctx["typed"] = data
    step = str(form.get("step", "confirm"))
    try:
        if step == "save":
            staff = require_staff(request)
            call = frame[1]
            _sub, plan = await change_subscription(
                session,
                customer_id=cid,
                subscription_id=sub.id,
                data=data,
                staff_id=staff.id,
                call_id=call.id if call is not None else None,
                now=now,
            )
            return await _tab(
                request, cid, frame, context={"notice": f"定期No.{sub.id}: {plan.summary}"}
            )
        plan = await plan_change(session, sub=sub, data=data, today=now.date())
    except SubscriptionInputError as exc:
        ctx["errors"] = exc.errors
        return await _tab(request, cid, frame, panel="_detail", context=ctx, status_code=422)
    except (SubscriptionConflict, StaleDataError):
        ctx["errors"] = {"form": SubscriptionConflict.message}
        return await _tab(request, cid, frame, panel="_detail", context=ctx, status_code=409)
    ctx["plan"] = plan
    ctx["terms"] = plan.terms
    return await _tab(request, cid, frame, panel="_change_confirm", context=ctx)


# --- 定期発送一覧 ----------------------------------------------------------------------------


def _day(request: Request, today: dt.date, source: Any = None) -> tuple[dt.date, str]:
    raw = str((source or request.query_params).get("date", "") or "")
    try:
        day = parse_date(raw)
    except ValueError:
        return today, "日付を 2026/12/10 の形式で入力してください。"
    return day or today, ""


async def _list_context(request: Request, day: dt.date, error: str) -> dict[str, Any]:
    today = _now().date()
    result = await shipments(
        db(request), day=day, today=today, page=page_param(request), per_page=LIST_PER_PAGE
    )
    return {
        "day": day,
        "day_text": f"{day:%Y/%m/%d}",
        "result": result,
        "error": error,
        "can_run": day <= today + dt.timedelta(days=EARLY_DAYS),
        "fkeys": [(1, "表示", "#shipments-date")],
    }


@requires_role(*LIST_ROLES)
async def shipments_page(request: Request) -> Response:
    """定期発送一覧 (S3): the subscription shipments of a day, 実行 (the daily run for that
    day), CSV and PDF."""
    today = _now().date()
    day, error = _day(request, today)
    ctx = await _list_context(request, day, error)
    status = 400 if error else 200
    if request.query_params.get("list") == "1":
        return templates.TemplateResponse(
            request, "subscriptions/_list.html", ctx, status_code=status
        )
    return render(request, "subscriptions", ctx, status_code=status)


@requires_role(*LIST_ROLES)
async def shipments_run(request: Request) -> Response:
    """実行: start the daily run for the chosen day; the page shows its progress."""
    today = _now().date()
    form = await read_form(request)
    day, error = _day(request, today, form)
    if not error and day > today + dt.timedelta(days=EARLY_DAYS):
        error = f"実行できるのは{EARLY_DAYS}日後の分までです。"
    staff = current_staff(request)
    run_id: int | None = None
    if not error:
        from jobs.functions import SUBSCRIPTION_DAILY

        try:
            async with transaction(request.app.state.sessionmaker) as session:
                run = await create_run(
                    session,
                    name=SUBSCRIPTION_DAILY,
                    params={"date": day.isoformat()},
                    staff_id=staff.id if staff else None,
                )
                run_id = run.id
        except JobError as exc:
            error = str(exc)
    if run_id is not None:
        await request.app.state.jobs.submit(run_id)
    ctx = await _list_context(request, day, error)
    ctx["run_id"] = run_id
    return render(request, "subscriptions", ctx, status_code=400 if error else 200)


async def _export_rows(request: Request) -> tuple[Any, str] | Response:
    today = _now().date()
    day, error = _day(request, today)
    if error:
        ctx = await _list_context(request, day, error)
        return render(request, "subscriptions", ctx, status_code=400)
    result = await shipments(db(request), day=day, today=today)
    staff = current_staff(request)
    await record(
        db(request),
        action="export_subscription_shipments",
        entity="subscription",
        staff_id=staff.id if staff else None,
        changes={"date": day.isoformat(), "rows": len(result.rows)},
        ip=request.client.host if request.client else "",
    )
    return result, f"{day:%Y%m%d}"


@requires_role(*LIST_ROLES)
async def shipments_csv_download(request: Request) -> Response:
    """定期発送一覧 as CSV (UTF-8 with BOM, one line per product)."""
    out = await _export_rows(request)
    if isinstance(out, Response):
        return out
    result, stamp = out
    return Response(
        shipments_csv(result),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="subscriptions_{stamp}.csv"'},
    )


@requires_role(*LIST_ROLES)
async def shipments_pdf_download(request: Request) -> Response:
    """定期発送一覧表 (PDF, A4 landscape)."""
    out = await _export_rows(request)
    if isinstance(out, Response):
        return out
    result, stamp = out
    pdf = await run_in_threadpool(shipments_pdf, result, printed_at=_now())  # CPU work
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="subscriptions_{stamp}.pdf"'},
    )


routes = [
    Route("/customers/{customer_id:int}/subscriptions", subscriptions_tab, methods=["GET"]),
    Route(
        "/customers/{customer_id:int}/subscriptions/new",
        subscription_new,
        methods=["GET", "POST"],
    ),
    Route(
        "/customers/{customer_id:int}/subscriptions/{subscription_id:int}",
        subscription_detail,
        methods=["GET", "POST"],
    ),
    Route("/subscriptions", shipments_page, methods=["GET"]),
    Route("/subscriptions/run", shipments_run, methods=["POST"]),
    Route("/subscriptions.csv", shipments_csv_download, methods=["GET"]),
    Route("/subscriptions.pdf", shipments_pdf_download, methods=["GET"]),
]
