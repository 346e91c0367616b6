"""Customer-monitor latency: the monitor's tabs, order submission and customer search.

Run by hand (not in CI), on PostgreSQL:

    .venv/bin/python -m bench.monitor --customers 1000000

It makes sure the bench database holds ``--customers`` demo customers, adds one customer with
200 orders (two lines each) and 100 responses, starts ``yebisu serve`` (real uvicorn) and, as a
logged-in operator over HTTP keep-alive:

* opens that customer's monitor on each of its seven tabs as a whole page (the header, the
  tab bar and the tab: 顧客詳細, 対応履歴, AC履歴, 定期情報, 購入履歴, 受注入力, 受注一覧);
* submits orders of two products through the order form's confirmation (``POST``), each with
  its own idempotency key, for random demo customers;
* searches by name, kana and phone, with values sampled from the data.

Times are client-side, request sent → whole response read. The last line printed is a JSON
object with monitor_p95_ms, order_p95_ms, search_p95_ms (and the details).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import (
    DEFAULT_URL,
    Server,
    as_ms,
    free_port,
    login_cookie,
    pg_dsn,
    prepare_database,
    show,
    summary,
)

PASSWORD = "bench-password"
BENCH_CODE = "BENCH-MONITOR"
TABS = ("", "/responses", "/actions", "/subscriptions", "/purchases", "/order", "/orders")


async def ensure_staff(url: str) -> None:
    from sqlalchemy import select

    from app.auth.models import Staff
    from app.auth.service import create_staff
    from app.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            if await s.scalar(select(Staff.id).where(Staff.login == "bench_mon")) is None:
                await create_staff(
                    s, login="bench_mon", name="ベンチ 計測", password=PASSWORD, extension="4999"
                )
    finally:
        await engine.dispose()


async def ensure_heavy_customer(url: str, orders: int, responses: int) -> int:
    """A customer with ``orders`` orders of two lines and ``responses`` responses (once)."""
    from sqlalchemy import func, select

    from app.customers.keys import kana_key, name_key
    from app.customers.models import Customer, CustomerPhone
    from app.db import make_engine, make_sessionmaker, transaction
    from app.masters.models import Ad, Carrier, Product
    from app.orders.models import Order, OrderLine
    from app.responses.models import Action, Response

    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            cid = await s.scalar(select(Customer.id).where(Customer.code == BENCH_CODE))
            if cid is not None:
                return int(cid)
            c = Customer(
                code=BENCH_CODE,
                name="計測 太郎",
                kana="ケイソク タロウ",
                name_key=name_key("計測 太郎"),
                kana_key=kana_key("ケイソク タロウ"),
                postcode="8400806",
                prefecture="佐賀県",
                city="佐賀市",
                street="神園1-2-3",
                birth_date=dt.date(1950, 4, 1),
                gender="M",
                alert="耳が遠い方なので大きい声でお願いします",
                karte="右ひざの痛み",
                flags={},
            )
            c.phones.append(
                CustomerPhone(raw="0952-00-0000", e164="+81952000000", last8="52000000")
            )
            s.add(c)
            await s.flush()
            products = (
                await s.scalars(select(Product).where(Product.price > 0).order_by(Product.code))
            ).all()
            carrier = await s.scalar(select(Carrier.id).order_by(Carrier.id))
            ad = await s.scalar(select(Ad.id).order_by(Ad.id))
            today = dt.date.today()
            base = int(await s.scalar(select(func.coalesce(func.max(Order.id), 0))) or 0)
            for i in range(orders):
                day = today - dt.timedelta(days=7 * (orders - i))
                a, b = products[i % len(products)], products[(i + 3) % len(products)]
                sub = a.price + 2 * b.price
                o = Order(
                    number=f"B{day:%Y%m%d}-{base + i + 1:07d}",
                    customer_id=c.id,
                    carrier_id=carrier,
                    ad_id=ad,
                    origin_region="福岡県",
                    dest_region="九州",
                    category="通常",
                    allocation="電話",
                    received_on=day,
                    ship_on=day + dt.timedelta(days=1),
                    deliver_on=day + dt.timedelta(days=2),
                    payment_method="cod",
                    payment_status="paid",
                    subtotal=sub,
                    shipping_fee=650,
                    cod_fee=330,
                    tax=(sub + 980) // 10,
                    total=sub + 980 + (sub + 980) // 10,
                    status="shipped",
                )
                for pos, (p, q) in enumerate(((a, 1), (b, 2))):
                    o.lines.append(
                        OrderLine(
                            position=pos,
                            product_id=p.id,
                            product_code=p.code,
                            product_name=p.name,
                            quantity=q,
                            unit_price=p.price,
                            amount=q * p.price,
                            tax_class=p.tax_class,
                        )
                    )
                s.add(o)
                await s.flush()
                s.add(
                    Action(
                        customer_id=c.id,
                        kind="order",
                        occurred_at=dt.datetime.combine(day, dt.time(3), dt.UTC),
                        order_id=o.id,
                        amount=o.total,
                        content=f"{a.name}×1、{b.name}×2",
                    )
                )
            for i in range(responses):
                at = dt.datetime.now(dt.UTC) - dt.timedelta(days=13 * i + 1)
                s.add(
                    Response(
                        customer_id=c.id,
                        responded_at=at,
                        category=("問合せ", "クレーム", "定期変更", "基本変更")[i % 4],
                        channel="電話",
                        content=f"計測用の問合せ {i}",
                        answer=f"計測用の回答 {i}",
                    )
                )
            return int(c.id)
    finally:
        await engine.dispose()


def sample_queries(url: str, n: int) -> dict[str, list[str]]:
    """Names (family name + given initial), kana (family kana) and phones from the data."""
    with psycopg.connect(pg_dsn(url)) as conn:
        rows = conn.execute(
            "SELECT c.name, c.kana, p.raw FROM customers c TABLESAMPLE SYSTEM (1) "
            "JOIN customer_phones p ON p.customer_id = c.id WHERE c.merged_into_id IS NULL "
            "LIMIT %s",
            (n * 3,),
        ).fetchall()
    rng = random.Random(11)
    rng.shuffle(rows)
    names = [r[0].replace(" ", "")[:3] for r in rows[:n]]
    kanas = [r[1].split(" ")[0] for r in rows[n : 2 * n]]
    phones = [r[2] for r in rows[2 * n : 3 * n]]
    return {"name": names, "kana": kanas, "phone": phones}


def sample_customers(url: str, n: int) -> list[int]:
    with psycopg.connect(pg_dsn(url)) as conn:
        rows = conn.execute(
            "SELECT id FROM customers TABLESAMPLE SYSTEM (1) "
            "WHERE merged_into_id IS NULL AND prefecture <> '' LIMIT %s",
            (n,),
        ).fetchall()
    return [r[0] for r in rows]


async def timed_get(client: httpx.AsyncClient, path: str) -> float:
    t0 = time.perf_counter()
    r = await client.get(path)
    elapsed = time.perf_counter() - t0
    if r.status_code != 200:
        raise SystemExit(f"GET {path}: HTTP {r.status_code}\n{r.text[:500]}")
    return elapsed


def form_fields(html: str) -> dict[str, list[str]]:
    """The named inputs of the rendered order form (checked radios, selected options)."""
    html = re.sub(r"<template\b.*?</template>", "", html, flags=re.S)
    fields: dict[str, list[str]] = {}
    for tag in re.findall(r"<input\b[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or ('type="radio"' in tag and " checked" not in tag):
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields.setdefault(name.group(1), []).append(value.group(1) if value else "")
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option(?: value="([^"]*)")? selected>([^<]*)', body)
        if chosen:
            fields[name] = [chosen.group(1) if chosen.group(1) is not None else chosen.group(2)]
    return fields


async def submit_order(client: httpx.AsyncClient, cid: int, codes: tuple[str, str]) -> float:
    """Open the order form, fill in two products, and time the submission (はい) only."""
    page = (await client.get(f"/customers/{cid}/order")).text
    fields = form_fields(page)
    fields["code"], fields["qty"] = list(codes), ["1", "2"]
    fields["price"], fields["base"] = ["", ""], ["", ""]
    fields["idempotency_key"] = [uuid.uuid4().hex]
    t0 = time.perf_counter()
    r = await client.post(f"/customers/{cid}/order", data=fields)
    elapsed = time.perf_counter() - t0
    if r.status_code != 200 or "を登録しました" not in r.text:
        raise SystemExit(f"order submit: HTTP {r.status_code}\n{r.text[:1500]}")
    return elapsed


async def run(args: argparse.Namespace, base_url: str, cookie: str, cid: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    jar = dict(part.split("=", 1) for part in cookie.split("; "))
    async with httpx.AsyncClient(base_url=base_url, cookies=jar, timeout=30) as client:
        page = (await client.get(f"/customers/{cid}")).text
        m = re.search(r'name="csrf-token" content="([^"]+)"', page) or re.search(
            r'"X-CSRF-Token": "([^"]+)"', page
        )
        assert m, "no CSRF token on the monitor page"
        client.headers["X-CSRF-Token"] = m.group(1)
        for _ in range(args.warmup):
            for tab in TABS:
                await timed_get(client, f"/customers/{cid}{tab}")
        per_tab: dict[str, list[float]] = {tab or "/": [] for tab in TABS}
        for _ in range(args.repeat):
            for tab in TABS:
                per_tab[tab or "/"].append(await timed_get(client, f"/customers/{cid}{tab}"))
        monitor = [t for values in per_tab.values() for t in values]
        out["monitor"] = summary(as_ms(monitor))
        show("monitor page, all tabs", out["monitor"])
        for tab, values in per_tab.items():
            s = summary(as_ms(values))
            out[f"monitor{tab}"] = s
            show(f"  {tab}", s)

        queries = sample_queries(args.database_url, args.searches)
        search: list[float] = []
        for how, values in queries.items():
            times = [await timed_get(client, f"/customers?q={q}") for q in values]
            search += times
            out[f"search_{how}"] = summary(as_ms(times))
            show(f"search by {how}", out[f"search_{how}"])
        out["search"] = summary(as_ms(search))
        show("search, all", out["search"])

        if not args.orders:
            out["order"] = summary([])
            return out
        customers = sample_customers(args.database_url, args.orders)
        rng = random.Random(5)
        codes = ["10001", "20001", "20002", "30001", "40001", "50001"]
        orders = []
        for i, customer in enumerate(customers[: args.orders]):
            pair = (rng.choice(codes), rng.choice(codes))
            t = await submit_order(client, customer, pair)
            if i >= min(10, args.orders // 5):
                orders.append(t)
        out["order"] = summary(as_ms(orders))
        show("order submission", out["order"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument("--repeat", type=int, default=60, help="page loads per tab")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--searches", type=int, default=100, help="searches per kind")
    p.add_argument("--orders", type=int, default=200, help="orders submitted")
    p.add_argument("--fresh", action="store_true", help="regenerate the demo data")
    args = p.parse_args()

    prepare_database(args.database_url, args.customers, fresh=args.fresh)
    asyncio.run(ensure_staff(args.database_url))
    cid = asyncio.run(ensure_heavy_customer(args.database_url, 200, 100))
    workdir = Path(tempfile.mkdtemp(prefix="yebisu-bench-monitor-"))
    port = free_port()
    server = Server(
        {
            "YEBISU_DATABASE_URL": args.database_url,
            "YEBISU_SERVER_SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "YEBISU_SERVER_LOG_LEVEL": "warning",
            "YEBISU_CTI_SOURCES": "[]",
        },
        port,
        workdir / "server.log",
    )
    try:
        cookie = login_cookie(server.url, "bench_mon", PASSWORD, "4999")
        out = asyncio.run(run(args, server.url, cookie, cid))
    finally:
        server.stop()
    result = {
        "customers": args.customers,
        "monitor_p95_ms": round(out["monitor"]["p95"], 2),
        "order_p95_ms": round(out["order"]["p95"], 2),
        "search_p95_ms": round(out["search"]["p95"], 2),
        "monitor_p50_ms": round(out["monitor"]["p50"], 2),
        "order_p50_ms": round(out["order"]["p50"], 2),
        "search_p50_ms": round(out["search"]["p50"], 2),
        "tabs_p95_ms": {
            k[7:] or "/": round(v["p95"], 2) for k, v in out.items() if k.startswith("monitor/")
        },
        "search_by_p95_ms": {
            k[7:]: round(v["p95"], 2) for k, v in out.items() if k.startswith("search_")
        },
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
