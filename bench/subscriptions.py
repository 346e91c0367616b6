"""The daily subscription run (S2): N subscriptions due on one day, on PostgreSQL.

Run by hand (not in CI):

    .venv/bin/python -m bench.subscriptions --subscriptions 100000

It (re)creates its own database (``--database-url``, default ``yebisu_bench_subs``),
migrates it, loads the demo masters and inserts ``--subscriptions`` customers, each with one
subscription due on the bench day: customers spread over every prefecture, both carriers,
cash on delivery or card, one or two products (some of them set products whose parts are
expanded, some with a product that brings a companion). Then it times the daily run for that
day (``app.subscriptions.daily.run_daily``, the function the job calls) and runs it a second
time, which must add nothing.

The last line printed is a JSON object with run_s, orders_created, second_run_created (and
second_run_s, lines_created, subscriptions).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import time
from typing import Any

import psycopg
from sqlalchemy import func, insert, select

import app.models  # noqa: F401  (every table, for the ORM)
from app.config import OrdersConfig
from app.customers.models import Customer
from app.db import make_engine, make_sessionmaker, transaction
from app.demo.names import PREFECTURES
from app.masters.models import Carrier, Product
from app.orders.models import OrderLine
from app.subscriptions.daily import run_daily
from app.subscriptions.models import Subscription, SubscriptionItem
from bench.common import pg_dsn

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/yebisu_bench_subs"
DAY = dt.date(2026, 12, 10)
CHUNK = 5000


def fresh_database(url: str) -> None:
    from app.migrate import upgrade

    base, _, name = url.rpartition("/")
    with psycopg.connect(pg_dsn(base + "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)


async def populate(url: str, n: int, seed: int = 1) -> None:
    from app.demo.service import load_masters

    rng = random.Random(seed)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    try:
        async with transaction(maker) as s:
            await load_masters(s)
        async with maker() as s:
            products = list(
                await s.scalars(
                    select(Product).where(Product.subscribable.is_(True), Product.active.is_(True))
                )
            )
            carriers = list(await s.scalars(select(Carrier.id)))
        assert products and carriers
        for start in range(0, n, CHUNK):
            size = min(CHUNK, n - start)
            async with transaction(maker) as s:
                customers = []
                for i in range(start, start + size):
                    pref = PREFECTURES[i % len(PREFECTURES)][0]
                    customers.append(
                        {
                            "code": f"BS{i:09d}",
                            "name": f"定期 太郎{i}",
                            "kana": "テイキ タロウ",
                            "name_key": f"定期太郎{i}",
                            "kana_key": "テイキタロウ",
                            "prefecture": pref,
                            "city": "テスト市",
                            "street": f"{i % 9 + 1}-{i % 17 + 1}",
                            "flags": {},
                        }
                    )
                ids = list(await s.scalars(insert(Customer).returning(Customer.id), customers))
                subs = [
                    {
                        "customer_id": cid,
                        "start_month": DAY.replace(day=1),
                        "interval_unit": "month",
                        "interval_n": rng.choice((1, 1, 2, 3)),
                        "day_of_month": DAY.day,
                        "next_date": DAY,
                        "status": "active",
                        "carrier_id": rng.choice(carriers),
                        "payment_method": rng.choice(("cod", "cod", "card")),
                        "cancel_reason": "",
                    }
                    for cid in ids
                ]
                sids = list(await s.scalars(insert(Subscription).returning(Subscription.id), subs))
                items = []
                for sid in sids:
                    for p in rng.sample(products, rng.choice((1, 1, 2))):
                        items.append(
                            {
                                "subscription_id": sid,
                                "product_id": p.id,
                                "quantity": rng.choice((1, 1, 2)),
                                "unit_price": p.price,
                                "note": "",
                            }
                        )
                await s.execute(insert(SubscriptionItem), items)
            print(f"\r  {start + size:,}/{n:,} subscriptions", end="", flush=True)
        print()
    finally:
        await engine.dispose()
    with psycopg.connect(pg_dsn(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


async def timed_run(url: str) -> tuple[float, int]:
    engine = make_engine(url)
    try:
        maker = make_sessionmaker(engine)
        t0 = time.perf_counter()
        result = await run_daily(maker, day=DAY, today=DAY, orders=OrdersConfig())
        elapsed = time.perf_counter() - t0
        if result.problems:
            print(f"  problems: {len(result.problems):,}", list(result.problems.items())[:3])
        return elapsed, result.created
    finally:
        await engine.dispose()


async def count_lines(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(OrderLine)) or 0)
    finally:
        await engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--subscriptions", type=int, default=100_000)
    p.add_argument("--database-url", default=DEFAULT_URL)
    args = p.parse_args()

    fresh_database(args.database_url)
    print(f"inserting {args.subscriptions:,} subscriptions due {DAY} …", flush=True)
    t0 = time.perf_counter()
    asyncio.run(populate(args.database_url, args.subscriptions))
    print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    run_s, created = asyncio.run(timed_run(args.database_url))
    print(f"first run: {run_s:.2f} s, {created:,} orders", flush=True)
    second_s, second = asyncio.run(timed_run(args.database_url))
    print(f"second run: {second_s:.2f} s, {second:,} orders", flush=True)
    result: dict[str, Any] = {
        "subscriptions": args.subscriptions,
        "run_s": round(run_s, 2),
        "orders_created": created,
        "second_run_created": second,
        "second_run_s": round(second_s, 2),
        "lines_created": asyncio.run(count_lines(args.database_url)),
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
