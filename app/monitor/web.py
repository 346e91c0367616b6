"""Rendering a monitor tab: the whole monitor page, or the tab's fragment for htmx."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.calls.models import Call
from app.customers.models import Customer
from app.db import utcnow
from app.inputs import ascii_int
from app.monitor.service import (
    Header,
    current_call,
    karte_viewed_since,
    log_karte_view,
    monitor_header,
)
from app.web import JST, db, is_htmx, render, require_staff, templates

KARTE_LOG_INTERVAL_S = 600


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    suffix: str  # path after /customers/{id}
    fkey: int


TABS: tuple[Tab, ...] = (
    Tab("detail", "顧客詳細", "", 2),
    Tab("responses", "対応履歴", "/responses", 3),
    Tab("actions", "AC履歴", "/actions", 4),
    Tab("subscriptions", "定期情報", "/subscriptions", 5),
    Tab("purchases", "購入履歴", "/purchases", 6),
    Tab("order", "受注入力", "/order", 7),
    Tab("orders", "受注一覧", "/orders", 8),
)
TAB_KEYS = {t.key for t in TABS}


def tab_url(
    customer_id: int, tab: str, call: Call | None = None, *, outbound: int | None = None
) -> str:
    """The URL of a monitor tab (carrying the call the monitor was opened from, and the
    outbound work-list entry when it was opened in outbound mode)."""
    suffix = next(t.suffix for t in TABS if t.key == tab)
    url = f"/customers/{customer_id}{suffix}"
    params = []
    if call is not None:
        params.append(f"call={call.id}")
    if outbound is not None:
        params.append(f"outbound={outbound}")
    return f"{url}?{'&'.join(params)}" if params else url


def call_param(request: Request) -> int | None:
    return ascii_int(request.query_params.get("call"))


def outbound_param(request: Request) -> int | None:
    """The outbound work-list entry of a monitor opened in outbound mode (``?outbound=``)."""
    return ascii_int(request.query_params.get("outbound"))


async def monitor_frame(request: Request, customer_id: int) -> tuple[Header | None, Call | None]:
    """The header (karte view logged when shown) and the call the monitor belongs to."""
    staff = require_staff(request)
    session = db(request)
    settings = request.app.state.settings
    may_read = staff.role in settings.privacy.karte_roles
    today = dt.datetime.now(JST).date()
    header = await monitor_header(
        session, customer_id=customer_id, today=today, may_read_karte=may_read
    )
    if header is None:
        return None, None
    if header.karte is not None and header.has_karte:
        since = utcnow() - dt.timedelta(seconds=KARTE_LOG_INTERVAL_S)
        if not await karte_viewed_since(
            session, customer_id=customer_id, staff_id=staff.id, since=since
        ):
            ip = request.client.host if request.client else ""
            await log_karte_view(session, customer_id=customer_id, staff_id=staff.id, ip=ip)
    call = await current_call(
        session, call_id=call_param(request), staff_id=staff.id, customer_id=customer_id
    )
    return header, call


def customer_missing(request: Request) -> Response:
    """The monitor of a customer who does not exist: 404 with a way back to search."""
    return render(request, "customer_missing", {}, status_code=404)


async def unknown_customer(request: Request, customer_id: int) -> Response | None:
    """:func:`customer_missing` (404) when there is no customer ``customer_id``, else None::

    if (missing := await unknown_customer(request, cid)) is not None:
        return missing
    """
    if await db(request).get(Customer, customer_id) is None:
        return customer_missing(request)
    return None


def fkeys_for(primary: tuple[str, str] | None) -> list[tuple[int, str, str]]:
    """F1 the tab's own action (label, CSS selector of its button); F2–F8 the tabs; F9 検索."""
    keys: list[tuple[int, str, str]] = []
    if primary is not None:
        keys.append((1, primary[0], primary[1]))
    keys += [(t.fkey, t.label, f"#tab-{t.key}") for t in TABS]
    keys.append((9, "顧客検索", "/customers"))
    return keys


async def render_tab(
    request: Request,
    *,
    customer_id: int,
    tab: str,
    template: str,
    context: dict[str, Any],
    primary: tuple[str, str] | None = None,
    status_code: int = 200,
    frame: tuple[Header | None, Call | None] | None = None,
) -> Response:
    """Render ``template`` (``{template}/_partial.html``) as the body of monitor tab ``tab``.

    A normal request gets the whole monitor page (header, tabs, the tab body, F-key bar);
    an htmx request gets the tab body, with the header, the tab bar and the F-key bar
    replaced out-of-band so they stay current. ``context`` is passed to the tab template
    together with ``header``, ``call``, ``tab`` and ``tab_urls``. Pass ``frame`` when the
    route already called :func:`monitor_frame`.
    """
    assert tab in TAB_KEYS, tab
    header, call = frame if frame is not None else await monitor_frame(request, customer_id)
    if header is None:
        return customer_missing(request)
    outbound = outbound_param(request)
    ctx = {
        **context,
        "header": header,
        "call": call,
        "tab": tab,
        "tabs": TABS,
        "outbound_entry": outbound,
        "tab_urls": {t.key: tab_url(customer_id, t.key, call, outbound=outbound) for t in TABS},
        "tab_template": f"{template}/_partial.html",
        "fkeys": fkeys_for(primary),
    }
    name = "monitor/_tab.html" if is_htmx(request) else "monitor/page.html"
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
