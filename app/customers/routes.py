"""顧客モニタ: search and the monitor page (the customer-monitor issue builds the tabs out)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.auth.models import Staff
from app.customers.models import Customer
from app.customers.service import PHONE_KINDS, search_customers
from app.masters.models import Rank
from app.orders.models import Order
from app.responses.models import Response as Resp
from app.web import JST, db, render
from cti_bridge.numbers import display_national

GENDERS = {"M": "男性", "F": "女性", "": "—"}


async def search(request: Request) -> Response:
    q = request.query_params.get("q", "")
    result = await search_customers(db(request), q=q)
    return render(
        request,
        "customers",
        {"q": q, "result": result, "fkeys": [(1, "検索", "#customer-q")]},
    )


def age_on(birth: dt.date | None, today: dt.date) -> int | None:
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


async def monitor(request: Request) -> Response:
    session = db(request)
    cid = int(request.path_params["customer_id"])
    customer = await session.get(Customer, cid, options=[selectinload(Customer.phones)])
    if customer is None:
        return render(request, "customer_missing", {}, status_code=404)
    rank = await session.get(Rank, customer.rank_id) if customer.rank_id else None
    staff = await session.get(Staff, customer.staff_id) if customer.staff_id else None
    orders = (
        await session.scalars(
            select(Order)
            .where(Order.customer_id == cid)
            .order_by(Order.received_on.desc(), Order.id.desc())
            .limit(20)
        )
    ).all()
    responses = (
        await session.scalars(
            select(Resp).where(Resp.customer_id == cid).order_by(Resp.responded_at.desc()).limit(20)
        )
    ).all()
    today = dt.datetime.now(JST).date()
    return render(
        request,
        "customer",
        {
            "c": customer,
            "rank": rank,
            "owner": staff,
            "age": age_on(customer.birth_date, today),
            "gender": GENDERS.get(customer.gender, "—"),
            "phones": [
                (display_national(p.e164) or p.raw, PHONE_KINDS.get(p.kind, p.kind))
                for p in customer.phones
            ],
            "orders": orders,
            "responses": responses,
            "call_id": request.query_params.get("call"),
            "fkeys": [(1, "検索", "/customers")],
        },
    )


routes = [
    Route("/customers", search, methods=["GET"]),
    Route("/customers/{customer_id:int}", monitor, methods=["GET"]),
]
