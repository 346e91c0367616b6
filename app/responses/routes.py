"""顧客モニタ tabs 対応履歴 (with the entry form and FAQ search) and AC履歴."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.calls.models import Call
from app.dates import today_jst
from app.events import ResponseSaved, publish
from app.inputs import ascii_int, read_form
from app.monitor.service import current_call
from app.monitor.web import (
    call_param,
    customer_missing,
    monitor_frame,
    render_tab,
    unknown_customer,
)
from app.responses import service
from app.responses.models import (
    ACTION_KINDS,
    RESPONSE_CATEGORIES,
    RESPONSE_CHANNELS,
)
from app.responses.models import Response as ResponseRecord
from app.web import JST, db, is_htmx, require_staff, templates

RESPONSE_FILTER_KEYS = ("from", "to", "cat", "ch")


def _cid(request: Request) -> int:
    return int(request.path_params["customer_id"])


async def _call_of(request: Request, customer_id: int) -> Call | None:
    """The monitor's call (``?call=``) when it is this operator's call for this customer."""
    return await current_call(
        db(request),
        call_id=call_param(request),
        staff_id=require_staff(request).id,
        customer_id=customer_id,
    )


def _url(path: str, call: Call | None, params: Mapping[str, str | int] | None = None) -> str:
    query: dict[str, str | int] = {}
    if call is not None:
        query["call"] = call.id
    query.update(params or {})
    return f"{path}?{urlencode(query)}" if query else path


def _fragment_for(request: Request, target: str) -> bool:
    """An htmx request that replaces only ``#target`` (not a history restore)."""
    return (
        is_htmx(request)
        and request.headers.get("HX-Target") == target
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def _page_no(params: Mapping[str, str]) -> int:
    return ascii_int(params.get("page"), max_digits=6) or 1


def _pager(path: str, call: Call | None, filters: dict[str, str], page: service.Page[Any]) -> Any:
    def at(n: int) -> str:
        return _url(path, call, {**filters, "page": n})

    return {
        "prev": at(page.page - 1) if page.page > 1 else None,
        "next": at(page.page + 1) if page.page < page.pages else None,
        "page": page,
    }


def _vary(response: Response) -> Response:
    response.headers["Vary"] = "HX-Request, HX-Target"
    return response


# --- 対応履歴 --------------------------------------------------------------------------------


def _response_filters(
    params: Mapping[str, str],
) -> tuple[dict[str, str], dict[str, str], tuple[service.DateRange, str, str]]:
    """The list's filter as typed (for the form and URLs), its errors, and the query values
    (days, 区分, 種別)."""
    dates, errors = service.parse_range(params.get("from"), params.get("to"), today=today_jst())
    cat = params.get("cat", "")
    ch = params.get("ch", "")
    if cat not in RESPONSE_CATEGORIES:
        cat = ""
    if ch not in RESPONSE_CHANNELS:
        ch = ""
    typed = {
        "from": params["from"] if "from" in params else service.format_date(dates.start),
        "to": params["to"] if "to" in params else service.format_date(dates.end),
        "cat": cat,
        "ch": ch,
    }
    return typed, errors, (dates, cat, ch)


async def _history_context(
    request: Request, cid: int, call: Call | None, params: Mapping[str, str]
) -> tuple[dict[str, Any], bool]:
    typed, errors, (dates, cat, ch) = _response_filters(params)
    page = await service.list_responses(
        db(request),
        customer_id=cid,
        dates=dates,
        category=cat,
        channel=ch,
        page=_page_no(params),
    )
    path = f"/customers/{cid}/responses"
    ctx = {
        "cid": cid,
        "call": call,
        "filters": typed,
        "filter_errors": errors,
        "rows": page,
        "pager": _pager(path, call, typed, page),
        "list_url": path,
        "categories": RESPONSE_CATEGORIES,
        "channels": RESPONSE_CHANNELS,
        "form_url": lambda rid: _url(f"{path}/form", call, {"response": rid}),
    }
    return ctx, bool(errors)


def _blank_form() -> dict[str, str]:
    return {
        "responded_at": dt.datetime.now(JST).strftime("%Y/%m/%d %H:%M"),
        "category": RESPONSE_CATEGORIES[0],
        "channel": "電話",
        "content": "",
        "answer": "",
        "status": "done",
        "response_id": "",
    }


def _form_of(response: ResponseRecord) -> dict[str, str]:
    return {
        "responded_at": response.responded_at.astimezone(JST).strftime("%Y/%m/%d %H:%M"),
        "category": response.category,
        "channel": response.channel,
        "content": response.content,
        "answer": response.answer,
        "status": "done",  # loaded to be completed
        "response_id": str(response.id),
    }


async def _form_context(
    request: Request,
    cid: int,
    call: Call | None,
    *,
    form: dict[str, str],
    editing: ResponseRecord | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
) -> dict[str, Any]:
    path = f"/customers/{cid}/responses"
    faqs = await service.search_faqs(db(request), text=form["content"]) if form["content"] else []
    return {
        "cid": cid,
        "call": call,
        "form": form,
        "editing": editing,
        "errors": errors or {},
        "notice": notice,
        "faqs": faqs,
        "faq_searched": bool(form["content"]),
        "categories": RESPONSE_CATEGORIES,
        "channels": RESPONSE_CHANNELS,
        "statuses": service.STATUSES,
        "post_url": _url(path, call),
        "faq_url": f"{path}/faqs",
        "blank_url": _url(f"{path}/form", call),
    }


async def _open_context(request: Request, cid: int, call: Call | None) -> dict[str, Any]:
    rows = await service.open_responses(
        db(request),
        customer_id=cid,
        staff_id=require_staff(request).id,
        call_id=call.id if call is not None else None,
    )
    path = f"/customers/{cid}/responses"
    return {
        "open_rows": rows,
        "call": call,
        "form_url": lambda rid: _url(f"{path}/form", call, {"response": rid}),
    }


async def responses_tab(request: Request) -> Response:
    """対応履歴: the customer's responses (filtered, paged), open ones to complete, the entry
    form with FAQ search; the filter and the pager swap only the list."""
    cid = _cid(request)
    if _fragment_for(request, "response-history"):
        if (missing := await unknown_customer(request, cid)) is not None:
            return missing
        call = await _call_of(request, cid)
        ctx, bad = await _history_context(request, cid, call, request.query_params)
        return _vary(
            templates.TemplateResponse(
                request, "responses_tab/_history.html", ctx, status_code=400 if bad else 200
            )
        )
    return await _whole_tab(request, cid, params=request.query_params)


async def _whole_tab(
    request: Request,
    cid: int,
    *,
    params: Mapping[str, str],
    form: dict[str, str] | None = None,
    editing: ResponseRecord | None = None,
    errors: dict[str, str] | None = None,
    status_code: int | None = None,
) -> Response:
    """The whole 対応履歴 tab; the form blank, loaded with the monitor's call's open response,
    or (``form``) as typed."""
    frame = await monitor_frame(request, cid)
    header, call = frame
    if header is None:
        return customer_missing(request)
    history, bad = await _history_context(request, cid, call, params)
    opened = await _open_context(request, cid, call)
    rows = opened["open_rows"]
    if form is None:
        if call is not None and rows and rows[0].call_id == call.id:
            editing = await db(request).get(ResponseRecord, rows[0].id)  # the call's
        form = _form_of(editing) if editing is not None else _blank_form()
    notice = "対応履歴を登録しました。" if params.get("saved") == "1" and not errors else ""
    ctx = {
        **history,
        **opened,
        **await _form_context(
            request, cid, call, form=form, editing=editing, errors=errors, notice=notice
        ),
    }
    response = await render_tab(
        request,
        customer_id=cid,
        tab="responses",
        template="responses_tab",
        context=ctx,
        primary=("登録", "#response-save"),
        status_code=status_code or (400 if bad else 200),
        frame=frame,
    )
    return _vary(response)


async def response_form(request: Request) -> Response:
    """The entry form: blank, or (``?response=``) loaded with an open response to complete."""
    cid = _cid(request)
    session = db(request)
    if (missing := await unknown_customer(request, cid)) is not None:
        return missing
    call = await _call_of(request, cid)
    if not is_htmx(request):
        return RedirectResponse(_url(f"/customers/{cid}/responses", call), status_code=303)
    response_id = ascii_int(request.query_params.get("response"))
    editing = None
    notice = ""
    if response_id is not None:
        editing = await service.response_for_form(
            session,
            response_id=response_id,
            customer_id=cid,
            call_id=call.id if call is not None else None,
        )
        if editing is None:
            notice = "この対応履歴は既に完了しているか、見つかりません。"
    form = _form_of(editing) if editing is not None else _blank_form()
    ctx = await _form_context(request, cid, call, form=form, editing=editing)
    ctx["warning"] = notice
    return templates.TemplateResponse(request, "responses_tab/_form.html", ctx)


def _typed(form: FormData) -> dict[str, str]:
    keys = ("responded_at", "category", "channel", "content", "answer", "status", "response_id")
    return {k: str(form.get(k, "")) for k in keys}


async def save(request: Request) -> Response:
    """登録: a new response, or the open one loaded into the form completed. Bad input: the
    form again with messages beside the fields (400), nothing written. Saved: a blank form,
    the list and the open responses refreshed."""
    cid = _cid(request)
    session = db(request)
    staff = require_staff(request)
    if (missing := await unknown_customer(request, cid)) is not None:
        return missing
    call = await _call_of(request, cid)
    form = await read_form(request)
    typed = _typed(form)
    values = {k: typed[k] for k in ("responded_at", "category", "channel", "content", "answer")}
    call_id = call.id if call is not None else None
    response_id = ascii_int(typed["response_id"])
    try:
        if response_id is not None:
            await service.complete_response(
                session,
                response_id=response_id,
                customer_id=cid,
                staff_id=staff.id,
                call_id=call_id,
                status=typed["status"],
                **values,
            )
        else:
            await service.save_response(
                session,
                customer_id=cid,
                staff_id=staff.id,
                call_id=call_id,
                status=typed["status"],
                **values,
            )
    except service.ResponseInputError as exc:
        editing = None
        if response_id is not None:
            editing = await service.response_for_form(
                session, response_id=response_id, customer_id=cid, call_id=call_id
            )
        if editing is None:
            typed["response_id"] = ""
        if not is_htmx(request):  # a plain form post (no script yet): the whole tab
            return await _whole_tab(
                request,
                cid,
                params={},
                form=typed,
                editing=editing,
                errors=exc.errors,
                status_code=400,
            )
        ctx = await _form_context(
            request, cid, call, form=typed, editing=editing, errors=exc.errors
        )
        return templates.TemplateResponse(request, "responses_tab/_form.html", ctx, status_code=400)
    publish(session, ResponseSaved(customer_id=cid, call_id=call_id))
    if not is_htmx(request):
        path = f"/customers/{cid}/responses"
        return RedirectResponse(_url(path, call, {"saved": 1}), status_code=303)
    filters = {k: str(form[k]) for k in RESPONSE_FILTER_KEYS if k in form}
    history, _ = await _history_context(request, cid, call, filters)
    ctx = {
        **history,
        **await _open_context(request, cid, call),
        **await _form_context(
            request, cid, call, form=_blank_form(), notice="対応履歴を登録しました。"
        ),
    }
    return templates.TemplateResponse(request, "responses_tab/_saved.html", ctx)


async def faq_results(request: Request) -> Response:
    """FAQs for the free search box (``faq_q``), else for the 内容 being typed."""
    q = request.query_params.get("faq_q", "").strip()
    text = request.query_params.get("content", "").strip()
    session = db(request)
    faqs = (
        await service.search_faqs(session, q=q)
        if q
        else await service.search_faqs(session, text=text)
    )
    return templates.TemplateResponse(
        request, "responses_tab/_faqs.html", {"faqs": faqs, "faq_searched": bool(q or text)}
    )


# --- AC履歴 ----------------------------------------------------------------------------------


async def _action_context(
    request: Request, cid: int, call: Call | None, params: Mapping[str, str]
) -> tuple[dict[str, Any], bool]:
    dates, errors = service.parse_range(params.get("from"), params.get("to"), today=today_jst())
    kind = params.get("kind", "")
    if kind not in ACTION_KINDS:
        kind = ""
    typed = {
        "from": params["from"] if "from" in params else service.format_date(dates.start),
        "to": params["to"] if "to" in params else service.format_date(dates.end),
        "kind": kind,
    }
    result = await service.list_actions(
        db(request), customer_id=cid, dates=dates, kind=kind, page=_page_no(params)
    )
    path = f"/customers/{cid}/actions"
    return {
        "cid": cid,
        "call": call,
        "filters": typed,
        "filter_errors": errors,
        "rows": result.page,
        "summary": result.summary,
        "pager": _pager(path, call, typed, result.page),
        "list_url": path,
        "kinds": ACTION_KINDS,
        "attribution_days": service.ATTRIBUTION_DAYS,
    }, bool(errors)


async def actions_tab(request: Request) -> Response:
    """AC履歴: the customer's actions newest first (filtered, paged) with the sales that
    followed each DM / カタログ / 電話 / メール; the filter and pager swap only the list."""
    cid = _cid(request)
    if _fragment_for(request, "action-history"):
        if (missing := await unknown_customer(request, cid)) is not None:
            return missing
        call = await _call_of(request, cid)
        ctx, bad = await _action_context(request, cid, call, request.query_params)
        return _vary(
            templates.TemplateResponse(
                request, "actions_tab/_history.html", ctx, status_code=400 if bad else 200
            )
        )
    frame = await monitor_frame(request, cid)
    header, call = frame
    if header is None:
        return customer_missing(request)
    ctx, bad = await _action_context(request, cid, call, request.query_params)
    response = await render_tab(
        request,
        customer_id=cid,
        tab="actions",
        template="actions_tab",
        context=ctx,
        primary=("検索", "#action-search"),
        status_code=400 if bad else 200,
        frame=frame,
    )
    return _vary(response)


routes: list[BaseRoute] = [
    Route("/customers/{customer_id:int}/responses", responses_tab, methods=["GET"]),
    Route("/customers/{customer_id:int}/responses", save, methods=["POST"]),
    Route("/customers/{customer_id:int}/responses/form", response_form, methods=["GET"]),
    Route("/customers/{customer_id:int}/responses/faqs", faq_results, methods=["GET"]),
    Route("/customers/{customer_id:int}/actions", actions_tab, methods=["GET"]),
]
