"""顧客モニタ: search and the monitor page (the customer-monitor issue builds the tabs out)."""

from __future__ import annotations

from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.customers.models import Customer
from app.customers.service import search_customers
from app.monitor.web import render_tab
from app.web import db, render


async def search(request: Request) -> Response:
    q = request.query_params.get("q", "")
    result = await search_customers(db(request), q=q)
    return render(
        request,
        "customers",
        {"q": q, "result": result, "fkeys": [(1, "検索", "#customer-q")]},
    )


async def monitor(request: Request) -> Response:
    """顧客モニタ, 顧客詳細 tab."""
    session = db(request)
    cid = int(request.path_params["customer_id"])
    customer = await session.get(Customer, cid, options=[selectinload(Customer.emails)])
    if customer is None:
        return render(request, "customer_missing", {}, status_code=404)
    return await render_tab(
        request,
        customer_id=cid,
        tab="detail",
        template="monitor_detail",
        context={"c": customer},
    )


routes = [
    Route("/customers", search, methods=["GET"]),
    Route("/customers/{customer_id:int}", monitor, methods=["GET"]),
]
