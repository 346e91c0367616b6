"""長期放置顧客一覧 latency: the first page of the dormant list on a large history.

Run by hand (not in CI), on PostgreSQL:

    .venv/bin/python -m bench.dormant --customers 1000000 --actions 10000000

It fills its own database (``--database-url``, default ``yebisu_bench_dormant``) with
``--customers`` customers (ranks, prefectures, DM flags, a few merged and 電話不可) and
``--actions`` actions over five years (calls, DM, catalogues, mails, responses and orders with
one order line each), loaded in bulk with ``generate_series``; the per-customer last action
table the triggers keep is then built once in one statement, as the migration's backfill
would. It starts ``yebisu serve`` (real uvicorn) and, as a logged-in supervisor over HTTP
keep-alive, loads the first page of ``/dormant`` for a mix of conditions: every アクション区分,
放置日数 30 / 90 / 365 / 1000, with and without a rank, a prefecture or the DM flag, sorted
by 放置日数 either way. The count (loaded after the page by the screen) is timed apart.

Times are client-side, request sent → whole response read. The last line printed is a JSON
object with dormant_p95_ms (and the details).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import Server, as_ms, free_port, login_cookie, pg_dsn, show, summary

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/yebisu_bench_dormant"
PASSWORD = "bench-password-1"
GROUPS = ("any", "call", "dm", "order", "response")
PREFS = ("北海道", "東京都", "大阪府", "佐賀県", "福岡県", "宮崎県", "愛知県", "沖縄県")

FILL = [
    "INSERT INTO ranks (code, name, sort_order, min_orders, min_amount, active) "
    "SELECT 'R' || i, (ARRAY['ゴールド','シルバー','ブロンズ','一般','休眠'])[i], i, 0, 0, true "
    "FROM generate_series(1, 5) i",
    "INSERT INTO products (code, name, kana, price, cost, tax_class, subscribable, is_present, "
    "description, active) "
    "SELECT 'BP' || lpad(i::text, 3, '0'), '健康商品' || i, '', 1000 + i * 100, 0, 'standard', "
    "false, false, '', true FROM generate_series(1, 50) i",
    # Customers: registered over five years; 2 % 電話不可, 0.5 % merged into their neighbour.
    "INSERT INTO customers (id, code, name, kana, name_key, kana_key, postcode, prefecture, city, "
    "street, building, company1, company2, gender, dm_required, no_call, rank_id, alert, karte, "
    "memo, flags, version, created_at, updated_at) "
    "SELECT i, 'D' || lpad(i::text, 9, '0'), '顧客' || i, 'コキャク' || i, '顧客' || i, "
    "'コキャク' || i, '', (ARRAY{prefs})[1 + i % {nprefs}], '市', '1-1', '', '', '', '', "
    "i % 3 <> 0, i % 50 = 0, CASE WHEN i % 7 = 0 THEN NULL ELSE 1 + i % 5 END, '', '', '', "
    "'{{}}', 1, now() - (i % 1826) * interval '1 day', now() "
    "FROM generate_series(1, {customers}) i",
    "UPDATE customers SET merged_into_id = id - 1 WHERE id % 200 = 0",
    "SELECT setval(pg_get_serial_sequence('customers', 'id'), {customers})",
    # Orders (15 % of the actions), each with one line.
    "INSERT INTO orders (id, number, customer_id, ship_name, ship_postcode, ship_prefecture, "
    "ship_address, slip_type, origin_region, dest_region, category, allocation, received_on, "
    "time_slot, payment_method, payment_status, subtotal, discount, shipping_fee, cod_fee, tax, "
    "total, status, tracking_number, note, created_at) "
    "SELECT i, 'B' || lpad(i::text, 10, '0'), 1 + (hashint4(i) & 2147483647) % {customers}, "
    "'', '', '', '', 'normal', '', '', '', '', "
    "(now() - ((hashint4(i * 7) & 2147483647) % 1826) * interval '1 day')::date, '', 'cod', "
    "'unpaid', 5800, 0, 0, 0, 580, 6380, 'confirmed', '', '', now() "
    "FROM generate_series(1, {orders}) i",
    "SELECT setval(pg_get_serial_sequence('orders', 'id'), greatest({orders}, 1))",
    "INSERT INTO order_lines (order_id, position, product_id, product_code, product_name, "
    "quantity, unit_price, amount, tax_class, is_present) "
    "SELECT o.id, 0, 1 + o.id % 50, 'BP' || lpad((1 + o.id % 50)::text, 3, '0'), "
    "'健康商品' || (1 + o.id % 50), 1 + o.id % 3, 5800, 5800, 'standard', false FROM orders o",
    "INSERT INTO actions (customer_id, kind, occurred_at, content, result, order_id, amount) "
    "SELECT o.customer_id, 'order', o.received_on + time '12:00', '受注', '', o.id, o.total "
    "FROM orders o",
    "INSERT INTO actions (customer_id, kind, occurred_at, content, result, amount) "
    "SELECT 1 + (hashint4(i * 3) & 2147483647) % {customers}, "
    "(ARRAY['call_in','call_out','dm','dm','catalog','mail','response'])[1 + i % 7], "
    "now() - ((hashint4(i * 11) & 2147483647) % 157766400) * interval '1 second', "
    "'bench', '', 0 FROM generate_series(1, {others}) i",
]

REBUILD = """
INSERT INTO customer_last_actions (customer_id, grp, last_at, action_id, kind, order_id)
SELECT c.id, g.grp, COALESCE(l.occurred_at, c.created_at), l.id, COALESCE(l.kind, ''), l.order_id
FROM customers c
CROSS JOIN (VALUES ('any'), ('call'), ('dm'), ('order'), ('response')) AS g(grp)
LEFT JOIN (
  SELECT DISTINCT ON (customer_id, grp) customer_id, grp, occurred_at, id, kind, order_id
  FROM (
    SELECT customer_id, 'any' AS grp, occurred_at, id, kind, order_id FROM actions
    UNION ALL
    SELECT customer_id, CASE kind WHEN 'call_in' THEN 'call' WHEN 'call_out' THEN 'call'
      WHEN 'dm' THEN 'dm' WHEN 'order' THEN 'order' WHEN 'response' THEN 'response' END,
      occurred_at, id, kind, order_id FROM actions
  ) x WHERE grp IS NOT NULL
  ORDER BY customer_id, grp, occurred_at DESC, id DESC
) l ON l.customer_id = c.id AND l.grp = g.grp
"""


def _counts(url: str) -> tuple[int, int]:
    try:
        with psycopg.connect(pg_dsn(url)) as conn:
            c = conn.execute("SELECT count(*) FROM customers").fetchone()
            a = conn.execute("SELECT count(*) FROM actions").fetchone()
            return (int(c[0]) if c else 0, int(a[0]) if a else 0)
    except psycopg.Error:
        return (-1, -1)


def prepare(url: str, customers: int, actions: int, *, fresh: bool) -> None:
    """A migrated database holding exactly this data set (made once, reused)."""
    from app.migrate import upgrade

    if not fresh and _counts(url) == (customers, actions):
        print(f"database ready: {customers:,} customers, {actions:,} actions")
        return
    base, _, name = url.rpartition("/")
    with psycopg.connect(pg_dsn(base + "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)
    orders = actions * 15 // 100
    values = {
        "customers": customers,
        "orders": orders,
        "others": actions - orders,
        "prefs": "[" + ",".join(f"'{p}'" for p in PREFS) + "]",
        "nprefs": len(PREFS),
    }
    t0 = time.perf_counter()
    with psycopg.connect(pg_dsn(url), autocommit=True) as conn:
        conn.execute("ALTER TABLE customers DISABLE TRIGGER USER")
        conn.execute("ALTER TABLE actions DISABLE TRIGGER USER")
        for statement in FILL:
            sql = statement.format(**values)
            t = time.perf_counter()
            conn.execute(sql)
            print(f"  {sql[:60]}… {time.perf_counter() - t:.1f} s", flush=True)
        t = time.perf_counter()
        conn.execute("DROP INDEX ix_customer_last_actions_grp_at")
        conn.execute(REBUILD)
        conn.execute(
            "CREATE INDEX ix_customer_last_actions_grp_at "
            "ON customer_last_actions (grp, last_at, customer_id)"
        )
        print(f"  last actions built in {time.perf_counter() - t:.1f} s", flush=True)
        conn.execute("ALTER TABLE customers ENABLE TRIGGER USER")
        conn.execute("ALTER TABLE actions ENABLE TRIGGER USER")
        conn.execute("VACUUM ANALYZE")
    print(f"data set made in {time.perf_counter() - t0:.1f} s")


async def ensure_staff(url: str) -> None:
    from sqlalchemy import select

    from app.auth.models import Staff
    from app.auth.service import create_staff
    from app.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            if await s.scalar(select(Staff.id).where(Staff.login == "bench_sv")) is None:
                await create_staff(
                    s,
                    login="bench_sv",
                    name="ベンチ リーダー",
                    password=PASSWORD,
                    role="supervisor",
                )
    finally:
        await engine.dispose()


def conditions() -> list[dict[str, str]]:
    """The mix of screens a supervisor asks for."""
    out: list[dict[str, str]] = []
    extra: list[dict[str, str]] = [{}, {"rank": "1"}, {"prefecture": "佐賀県"}, {"dm": "1"}]
    for group, days, more, sort in itertools.product(
        GROUPS, ("30", "90", "365", "1000"), extra, ("days", "-days")
    ):
        out.append({"group": group, "days": days, "sort": sort, **more})
    return out


async def timed_get(client: httpx.AsyncClient, path: str, params: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = await client.get(path, params=params)
    elapsed = time.perf_counter() - t0
    assert r.status_code == 200, (path, params, r.status_code, r.text[:300])
    return elapsed


async def run(args: argparse.Namespace, base_url: str, cookie: str) -> dict[str, Any]:
    jar = dict(part.split("=", 1) for part in cookie.split("; "))
    out: dict[str, Any] = {}
    conds = conditions()
    rng = random.Random(7)
    async with httpx.AsyncClient(base_url=base_url, cookies=jar, timeout=60) as client:
        for params in conds[: args.warmup]:
            await timed_get(client, "/dormant", params)
        pages: list[float] = []
        per_group: dict[str, list[float]] = {g: [] for g in GROUPS}
        for _ in range(args.repeat):
            for params in rng.sample(conds, len(conds)):
                t = await timed_get(client, "/dormant", params)
                pages.append(t)
                per_group[params["group"]].append(t)
        out["dormant"] = summary(as_ms(pages))
        show("dormant list, first page", out["dormant"])
        for group, values in per_group.items():
            out[f"group_{group}"] = summary(as_ms(values))
            show(f"  アクション区分 {group}", out[f"group_{group}"])
        counts = [
            await timed_get(client, "/dormant/count", params)
            for params in rng.sample(conds, min(args.counts, len(conds)))
        ]
        out["count"] = summary(as_ms(counts))
        show("count (loaded after the page)", out["count"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--actions", type=int, default=10_000_000)
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument("--repeat", type=int, default=3, help="rounds over the 160 conditions")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--counts", type=int, default=20, help="counts timed")
    p.add_argument("--fresh", action="store_true", help="rebuild the data set")
    args = p.parse_args()

    prepare(args.database_url, args.customers, args.actions, fresh=args.fresh)
    asyncio.run(ensure_staff(args.database_url))
    workdir = Path(tempfile.mkdtemp(prefix="yebisu-bench-dormant-"))
    server = Server(
        {
            "YEBISU_DATABASE_URL": args.database_url,
            "YEBISU_SERVER_SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "YEBISU_SERVER_LOG_LEVEL": "warning",
            "YEBISU_CTI_SOURCES": "[]",
        },
        free_port(),
        workdir / "server.log",
    )
    try:
        cookie = login_cookie(server.url, "bench_sv", PASSWORD)
        out = asyncio.run(run(args, server.url, cookie))
    finally:
        server.stop()
    result = {
        "customers": args.customers,
        "actions": args.actions,
        "dormant_p95_ms": round(out["dormant"]["p95"], 2),
        "dormant_p50_ms": round(out["dormant"]["p50"], 2),
        "dormant_p99_ms": round(out["dormant"]["p99"], 2),
        "by_group_p95_ms": {g: round(out[f"group_{g}"]["p95"], 2) for g in GROUPS},
        "count_p95_ms": round(out["count"]["p95"], 2),
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
