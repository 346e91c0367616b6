"""定期情報: the monitor's subscriptions tab (定期申し込み状況 and 定期の配送履歴), read-only."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.calls.models import Call
from app.monitor.web import customer_missing, monitor_frame, render_tab
from app.subscriptions.service import customer_subscriptions, delivery_history
from app.web import JST, db

PER_PAGE = 50  # delivery-history orders a page


def _page(request: Request) -> int:
    raw = request.query_params.get("page", "")
    return max(1, int(raw)) if raw.isdigit() and len(raw) < 7 else 1


def _with_call(url: str, call: Call | None) -> str:
    return url if call is None else f"{url}&call={call.id}"


async def subscriptions_tab(request: Request) -> Response:
    """定期情報 (S1, S5): the customer's subscriptions with the next delivery date and a 受注へ
    link each, and the orders they made with 何回目."""
    cid = int(request.path_params["customer_id"])
    frame = await monitor_frame(request, cid)
    if frame[0] is None:
        return customer_missing(request)
    call = frame[1]
    session = db(request)
    today = dt.datetime.now(JST).date()
    subscriptions = await customer_subscriptions(session, customer_id=cid, today=today)
    history = await delivery_history(
        session, customer_id=cid, page=_page(request), per_page=PER_PAGE
    )

    def order_url(subscription_id: int) -> str:
        return _with_call(f"/customers/{cid}/order?subscription={subscription_id}", call)

    def page_url(n: int) -> str:
        return _with_call(f"/customers/{cid}/subscriptions?page={n}", call)

    return await render_tab(
        request,
        customer_id=cid,
        tab="subscriptions",
        template="subscriptions_tab",
        context={
            "subscriptions": subscriptions,
            "history": history,
            "order_url": order_url,
            "page_url": page_url,
        },
        frame=frame,
    )


routes = [
    Route("/customers/{customer_id:int}/subscriptions", subscriptions_tab, methods=["GET"]),
]
