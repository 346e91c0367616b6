"""ランク再計算 (R1): ranks from purchase count, amount and recency, set-based; each change in
the customer's 変更履歴; the monitor header reads the new rank."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.customers.history import customer_history
from app.customers.keys import kana_key, name_key
from app.customers.models import Customer
from app.db import make_engine, make_sessionmaker, transaction
from app.demo.service import load_masters
from app.masters.models import Rank
from app.monitor.service import monitor_header
from app.orders.models import Order
from app.orders.ranks import recalculate_ranks
from app.runs.service import create_run, execute
from jobs.functions import RANK_RECALCULATION

TODAY = dt.date(2025, 4, 21)


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _customer(s: AsyncSession, code: str, orders: list[tuple[int, int, str]]) -> int:
    """A customer with orders (days ago, total, status)."""
    c = Customer(
        code=code,
        name=f"顧客 {code}",
        kana="コキャク",
        name_key=name_key(f"顧客{code}"),
        kana_key=kana_key("コキャク"),
        flags={},
    )
    s.add(c)
    await s.flush()
    for i, (ago, total, status) in enumerate(orders):
        s.add(
            Order(
                number=f"{code}-{i}",
                customer_id=c.id,
                received_on=TODAY - dt.timedelta(days=ago),
                total=total,
                status=status,
            )
        )
    return int(c.id)


@pytest.fixture
async def world(maker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    # demo ranks: platinum 6 orders / 50,000 / 180 days; gold 4 / 30,000 / 365;
    # silver 2 / 10,000 / 730; regular: everyone
    async with transaction(maker) as s:
        await load_masters(s)
        ids = {r.code: r.id for r in await s.scalars(select(Rank))}
        ids["plat"] = await _customer(s, "P1", [(10 * i, 10_000, "shipped") for i in range(6)])
        ids["stale"] = await _customer(
            s, "P2", [(200 + 10 * i, 10_000, "shipped") for i in range(6)]
        )
        ids["silver"] = await _customer(
            s, "S1", [(30, 6000, "shipped"), (60, 6000, "shipped"), (90, 90_000, "cancelled")]
        )
        ids["none"] = await _customer(s, "N1", [])
        return ids


async def test_recalculation_sets_ranks_and_records_each_change(
    maker: async_sessionmaker[AsyncSession], world: dict[str, int]
) -> None:
    async with transaction(maker) as s:
        changed = await recalculate_ranks(s, today=TODAY)
    assert changed == 4
    async with transaction(maker) as s:
        ranks = {
            code: rank for code, rank in await s.execute(select(Customer.code, Customer.rank_id))
        }
    assert ranks == {
        "P1": world["platinum"],
        "P2": world["gold"],  # 6 orders, but the last one 200 days ago
        "S1": world["silver"],  # the cancelled order does not count
        "N1": world["regular"],
    }
    async with transaction(maker) as s:
        entries, _ = await customer_history(s, customer_id=world["plat"], may_read_karte=False)
        header = await monitor_header(
            s, customer_id=world["plat"], today=TODAY, may_read_karte=False
        )
    assert [(e.action_label, e.purpose) for e in entries] == [("顧客情報の変更", "ランク再計算")]
    assert [(x.label, x.old, x.new) for x in entries[0].lines] == [
        ("ランク", "（なし）", "プラチナ")
    ]
    assert header is not None and header.rank == "プラチナ"
    # nothing changed: nothing written
    async with transaction(maker) as s:
        assert await recalculate_ranks(s, today=TODAY) == 0


async def test_a_later_day_and_a_changed_master_move_customers(
    maker: async_sessionmaker[AsyncSession], world: dict[str, int]
) -> None:
    async with transaction(maker) as s:
        await recalculate_ranks(s, today=TODAY)
    # 130 days later P1's last order is 130 days old: still platinum (180); a retired
    # platinum rank moves P1 to gold
    async with transaction(maker) as s:
        platinum = await s.get(Rank, world["platinum"])
        assert platinum is not None
        platinum.active = False
    async with transaction(maker) as s:
        assert await recalculate_ranks(s, today=TODAY + dt.timedelta(days=130)) == 1
    async with transaction(maker) as s:
        c = await s.get(Customer, world["plat"])
        assert c is not None and c.rank_id == world["gold"]
        entries, _ = await customer_history(s, customer_id=world["plat"], may_read_karte=False)
    assert [(x.old, x.new) for x in entries[0].lines] == [("プラチナ", "ゴールド")]


async def test_the_rank_job_recalculates_as_a_job_run(
    maker: async_sessionmaker[AsyncSession], world: dict[str, int], settings: Settings
) -> None:
    """ランク再計算 as the nightly job runs it (in-process here; arq calls the same)."""
    async with transaction(maker) as s:
        run = await create_run(s, name=RANK_RECALCULATION, params={"date": TODAY.isoformat()})
        run_id = run.id
    done = await execute(maker, run_id, settings)
    assert done is not None and done.status == "done"
    assert done.message == "ランク変更 4件"
    async with transaction(maker) as s:
        rank = await s.scalar(select(Customer.rank_id).where(Customer.id == world["plat"]))
    assert rank == world["platinum"]
