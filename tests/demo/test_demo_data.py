"""Demo data: counts, phones, determinism, consistency, demo log-ins (SQLite; PostgreSQL too)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from sqlalchemy import func, select, text

import app.models  # noqa: F401
from app.auth.service import authenticate
from app.db import Base, make_engine, make_sessionmaker, transaction
from app.demo.service import (
    COLUMNS,
    DEMO_USERS,
    DemoDataError,
    generate,
    load_masters,
    name_keys,
    rank_for,
    tracking_number,
)
from app.migrate import upgrade
from tests.conftest import need

SEED = 7
CUSTOMERS = 200
TODAY = dt.date(2026, 5, 20)


def _sqlite_url(path: Path) -> str:
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


def _generate(url: str, **kw: Any) -> tuple[dict[str, int], list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []
    counts = asyncio.run(
        generate(
            url,
            customers=kw.pop("customers", CUSTOMERS),
            seed=kw.pop("seed", SEED),
            today=kw.pop("today", TODAY),
            progress=lambda done, total: calls.append((done, total)),
            **kw,
        )
    )
    return counts, calls


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, int]]]:
    """One generated SQLite database shared by the read-only tests of this module."""
    url = _sqlite_url(tmp_path_factory.mktemp("demo") / "demo.db")
    counts, calls = _generate(url, chunk_size=64)
    assert calls[-1] == (CUSTOMERS, CUSTOMERS)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    yield url, counts


async def _rows(url: str, sql: str) -> list[Any]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(text(sql)))
    finally:
        await engine.dispose()


async def _table_counts(url: str, tables: list[str]) -> dict[str, int]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            out = {}
            for name in tables:
                table = Base.metadata.tables[name]
                out[name] = int(await conn.scalar(select(func.count()).select_from(table)) or 0)
            return out
    finally:
        await engine.dispose()


# --- pure helpers -----------------------------------------------------------------------------


def test_name_keys_strip_spaces_and_normalise_kana() -> None:
    assert name_keys("佐賀　太郎", "さが ﾀﾛｳ") == ("佐賀太郎", "サガタロウ")
    assert name_keys("ＡＢＣ 商事", "ｴｰﾋﾞｰｼｰ ｼｮｳｼﾞ") == ("ABC商事", "エービーシーショウジ")


def test_rank_for_takes_the_best_rank_whose_thresholds_are_all_met() -> None:
    ranks = [(1, 6, 50_000, 180), (2, 4, 30_000, 365), (3, 2, 10_000, 730), (4, 0, 0, None)]
    assert rank_for(ranks, 7, 60_000, 30) == 1
    assert rank_for(ranks, 10, 90_000, 300) == 2  # many orders but not recent enough
    assert rank_for(ranks, 0, 0, None) == 4
    assert rank_for(ranks[:3], 0, 0, None) is None


def test_tracking_number_check_digit() -> None:
    number = tracking_number(12345678901)
    assert number == "123456789013" and int(number[:11]) % 7 == int(number[11])


def test_columns_cover_every_column_of_the_generated_tables() -> None:
    for table, columns in COLUMNS.items():
        assert set(columns) == set(Base.metadata.tables[table].columns.keys()), table


# --- generated database -----------------------------------------------------------------------


async def test_counts_match_the_database(demo: tuple[str, dict[str, int]]) -> None:
    url, counts = demo
    assert counts["customers"] == CUSTOMERS
    assert await _table_counts(url, list(counts)) == counts
    for table in (
        "customer_phones",
        "orders",
        "order_lines",
        "responses",
        "actions",
        "subscriptions",
        "customer_emails",
        "ship_tos",
    ):
        assert counts[table] > 0, table
    assert counts["shipping_rates"] == 47 * 2
    assert counts["staff"] == len(DEMO_USERS)


async def test_every_customer_has_one_to_three_phones_and_some_are_shared(
    demo: tuple[str, dict[str, int]],
) -> None:
    url, _ = demo
    per_customer = await _rows(
        url,
        "SELECT c.id, count(p.id) FROM customers c "
        "LEFT JOIN customer_phones p ON p.customer_id = c.id GROUP BY c.id",
    )
    assert len(per_customer) == CUSTOMERS
    assert all(1 <= n <= 3 for _, n in per_customer)
    phones = await _rows(url, "SELECT customer_id, raw, e164, last8, kind FROM customer_phones")
    owners = Counter(e164 for _, _, e164, _, _ in phones)
    shared = [e164 for e164, n in owners.items() if n > 1]
    assert shared, "no phone is shared by a family"
    assert max(owners.values()) == 2
    for _, raw, e164, last8, kind in phones:
        assert e164.startswith("+81"), e164
        assert re.fullmatch(r"\d{8}", last8), last8
        assert e164.endswith(last8)
        assert re.fullmatch(r"0\d{1,4}-\d{1,4}-\d{4}", raw), raw
        assert kind in {"home", "mobile", "office", "fax", "other"}
        parsed = phonenumbers.parse(e164)
        assert phonenumbers.is_valid_number(parsed), raw
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == e164
    # a shared phone belongs to one family: same family name and address
    families = await _rows(
        url,
        "SELECT p.e164, c.name, c.postcode, c.street FROM customer_phones p "
        "JOIN customers c ON c.id = p.customer_id",
    )
    for e164 in shared:
        members = {
            (name.split()[0], post, street) for n, name, post, street in families if n == e164
        }
        assert len(members) == 1, members


async def test_customers_are_complete_and_searchable(demo: tuple[str, dict[str, int]]) -> None:
    url, _ = demo
    rows = await _rows(
        url,
        "SELECT code, name, kana, name_key, kana_key, postcode, prefecture, city, street, "
        "birth_date, gender, rank_id, staff_id, ad_id FROM customers ORDER BY id",
    )
    assert rows[0].name == "佐賀 太郎" and rows[0].code == "00000001"
    for row in rows:
        assert re.fullmatch(r"\d{8}", row.code)
        assert (row.name_key, row.kana_key) == name_keys(row.name, row.kana)
        assert re.fullmatch(r"[ァ-ヶー]+", row.kana_key), row.kana_key
        assert re.fullmatch(r"\d{3}-\d{4}", row.postcode)
        assert row.prefecture and row.city and row.street
        assert row.gender in {"M", "F"}
        assert row.rank_id is not None and row.staff_id is not None and row.ad_id is not None
    ranks = {
        r.name
        for r in await _rows(
            url, "SELECT DISTINCT r.name FROM customers c JOIN ranks r ON r.id = c.rank_id"
        )
    }
    assert {"プラチナ", "一般"} <= ranks
    alerts = await _rows(url, "SELECT count(*) FROM customers WHERE alert != ''")
    assert alerts[0][0] > 0


async def test_orders_add_up_and_match_their_actions(demo: tuple[str, dict[str, int]]) -> None:
    url, _ = demo
    lines = await _rows(
        url,
        "SELECT order_id, sum(amount), "
        "sum(CASE WHEN tax_class = 'reduced' THEN amount ELSE 0 END), "
        "sum(CASE WHEN amount != quantity * unit_price THEN 1 ELSE 0 END) "
        "FROM order_lines GROUP BY order_id",
    )
    by_order = {oid: (total, reduced, bad) for oid, total, reduced, bad in lines}
    orders = await _rows(
        url,
        "SELECT id, customer_id, slip_type, subtotal, shipping_fee, cod_fee, tax, total, "
        "payment_method, received_on, ship_on, deliver_on, subscription_id, "
        "subscription_due_on, status, tracking_number FROM orders",
    )
    actions = {
        r.order_id: r
        for r in await _rows(
            url, "SELECT order_id, customer_id, amount FROM actions WHERE kind = 'order'"
        )
    }
    assert len(actions) == len(orders)
    for o in orders:
        subtotal, reduced, bad = by_order[o.id]
        assert bad == 0 and o.subtotal == subtotal
        standard = subtotal - reduced + o.shipping_fee + o.cod_fee
        assert o.tax == standard * 10 // 100 + reduced * 8 // 100
        assert o.total == o.subtotal + o.shipping_fee + o.cod_fee + o.tax
        assert (o.cod_fee > 0) == (o.payment_method == "cod")
        assert o.received_on <= o.ship_on <= o.deliver_on
        assert (o.slip_type == "subscription") == (o.subscription_id is not None)
        if o.subscription_id is not None:
            assert o.deliver_on == o.subscription_due_on
        if o.status in ("shipped", "returned"):
            assert re.fullmatch(r"\d{12}", o.tracking_number)
        assert actions[o.id].customer_id == o.customer_id
        assert actions[o.id].amount == o.total
    fees = await _rows(
        url,
        "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
        "JOIN shipping_rates r ON r.carrier_id = o.carrier_id AND r.prefecture = c.prefecture "
        "WHERE o.ship_to_id IS NULL AND o.shipping_fee != r.fee",
    )
    assert fees[0][0] == 0


async def test_subscriptions_responses_and_actions(demo: tuple[str, dict[str, int]]) -> None:
    url, _ = demo
    subs = await _rows(
        url,
        "SELECT s.id, s.status, s.next_date, count(i.id) AS items FROM subscriptions s "
        "LEFT JOIN subscription_items i ON i.subscription_id = s.id GROUP BY s.id",
    )
    assert {s.status for s in subs} >= {"active", "cancelled"}
    for s in subs:
        assert s.items >= 1
        assert (s.next_date is None) == (s.status == "cancelled")
    tonic = await _rows(
        url,
        "SELECT count(*) FROM subscription_items i JOIN products p ON p.id = i.product_id "
        "WHERE p.name = '健康トニック'",
    )
    assert tonic[0][0] > 0
    categories = {r[0] for r in await _rows(url, "SELECT DISTINCT category FROM responses")}
    assert {"問合せ", "クレーム", "定期変更", "基本変更"} <= categories
    kinds = {r[0] for r in await _rows(url, "SELECT DISTINCT kind FROM actions")}
    assert {"call_in", "call_out", "dm", "catalog", "mail", "order"} <= kinds


async def test_demo_users_can_log_in(demo: tuple[str, dict[str, int]]) -> None:
    url, _ = demo
    engine = make_engine(url)
    try:
        for login, password, role, name, _kana, ext in DEMO_USERS:
            async with transaction(make_sessionmaker(engine)) as session:
                result = await authenticate(
                    session, login=login, password=password, max_failed=5, lockout_minutes=15
                )
                assert result.staff is not None, result.error
                assert (result.staff.role, result.staff.name) == (role.value, name)
                assert result.staff.extension == ext
    finally:
        await engine.dispose()


def test_a_second_run_refuses(demo: tuple[str, dict[str, int]]) -> None:
    url, counts = demo
    with pytest.raises(DemoDataError, match="顧客データが既にあります"):
        _generate(url, customers=5)
    assert asyncio.run(_table_counts(url, ["customers"]))["customers"] == counts["customers"]


def test_same_seed_gives_the_same_data(tmp_path: Path, demo: tuple[str, dict[str, int]]) -> None:
    url, counts = demo
    other = _sqlite_url(tmp_path / "again.db")
    counts2, _ = _generate(other)  # default chunk size: chunking must not matter
    assert counts2 == counts
    sql = (
        "SELECT c.code, c.name, c.kana, c.street, p.raw, p.kind FROM customers c "
        "JOIN customer_phones p ON p.customer_id = c.id ORDER BY c.id, p.position"
    )
    assert asyncio.run(_rows(other, sql)) == asyncio.run(_rows(url, sql))
    orders = "SELECT number, total FROM orders ORDER BY id"
    assert asyncio.run(_rows(other, orders)) == asyncio.run(_rows(url, orders))

    third = _sqlite_url(tmp_path / "other-seed.db")
    _generate(third, seed=SEED + 1, customers=30)
    names = "SELECT name FROM customers WHERE id > 7 ORDER BY id"
    assert asyncio.run(_rows(third, names)) != asyncio.run(_rows(url, names))[:23]


def test_load_masters_is_idempotent(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path / "masters.db")
    tables = ["ranks", "ads", "product_categories", "products", "carriers", "shipping_rates"]

    async def twice() -> tuple[dict[str, int], dict[str, int]]:
        engine = make_engine(url)
        try:
            async with transaction(make_sessionmaker(engine)) as session:
                await load_masters(session)
            first = await _table_counts(url, tables)
            async with transaction(make_sessionmaker(engine)) as session:
                await load_masters(session)
            return first, await _table_counts(url, tables)
        finally:
            await engine.dispose()

    first, second = asyncio.run(twice())
    assert first == second
    assert first["shipping_rates"] == 94 and first["ranks"] == 4
    products = {
        r.name: r
        for r in asyncio.run(
            _rows(url, "SELECT name, price, tax_class, subscribable, is_present FROM products")
        )
    }
    assert products["健康トニック"].price == 6900 and products["健康トニック"].subscribable
    assert {"健康テープ", "健康サポートテープ", "健康セット"} <= set(products)
    assert any(p.is_present for p in products.values())
    assert any(p.tax_class == "reduced" for p in products.values())
    rates = asyncio.run(
        _rows(url, "SELECT prefecture, region, fee, cod_fee, lead_days FROM shipping_rates")
    )
    lead = {r.prefecture: r.lead_days for r in rates}
    assert (lead["佐賀県"], lead["東京都"], lead["北海道"], lead["沖縄県"]) == (1, 2, 3, 3)
    assert all(600 <= r.fee <= 1500 and r.cod_fee == 330 for r in rates)


def test_empty_run_loads_only_masters_and_users(tmp_path: Path) -> None:
    url = _sqlite_url(tmp_path / "empty.db")
    counts, calls = _generate(url, customers=0)
    assert counts["customers"] == 0 and counts["staff"] == len(DEMO_USERS)
    assert calls == []


# --- PostgreSQL (COPY path) -------------------------------------------------------------------


@pytest.mark.postgres
def test_counts_on_postgresql(demo: tuple[str, dict[str, int]]) -> None:
    base = os.environ.get("YEBISU_TEST_DATABASE_URL", "")
    need(bool(base), "PostgreSQL (YEBISU_TEST_DATABASE_URL)")
    import psycopg

    name = f"yebisu_demo_{uuid.uuid4().hex[:12]}"
    admin = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{base.rpartition('/')[0]}/{name}"
    try:
        upgrade(url)
        counts, calls = _generate(url, chunk_size=64)
        assert calls[-1] == (CUSTOMERS, CUSTOMERS)
        assert asyncio.run(_table_counts(url, list(counts))) == counts

        async def after() -> tuple[int, int, int]:
            engine = make_engine(url)
            try:
                async with engine.begin() as conn:
                    # the sequences moved past the generated ids
                    new_id = await conn.scalar(
                        text(
                            "INSERT INTO customer_emails (customer_id, address, position) "
                            "VALUES (1, 'x@example.jp', 9) RETURNING id"
                        )
                    )
                    fks = await conn.scalar(
                        text(
                            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
                            "AND conrelid = 'orders'::regclass"
                        )
                    )
                    await conn.rollback()
                return int(new_id or 0), int(fks or 0), counts["customer_emails"]
            finally:
                await engine.dispose()

        new_id, fks, emails = asyncio.run(after())
        assert new_id == emails + 1
        assert fks == len(Base.metadata.tables["orders"].foreign_key_constraints)
        # both backends hold the same rows for the same seed
        sql = (
            "SELECT c.code, c.name, c.kana, c.street, p.raw, p.e164, p.kind FROM customers c "
            "JOIN customer_phones p ON p.customer_id = c.id ORDER BY c.id, p.position"
        )
        assert asyncio.run(_rows(url, sql)) == asyncio.run(_rows(demo[0], sql))
        orders = "SELECT number, received_on, total FROM orders ORDER BY id"
        pg_orders = [tuple(map(str, r)) for r in asyncio.run(_rows(url, orders))]
        assert pg_orders == [tuple(map(str, r)) for r in asyncio.run(_rows(demo[0], orders))]
        with pytest.raises(DemoDataError):
            _generate(url, customers=1)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
