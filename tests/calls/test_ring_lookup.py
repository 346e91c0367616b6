"""The ringing look-up on its own PostgreSQL connections: one round trip before the pop, and
the session takes over whenever those connections are busy or lost."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.service import create_staff
from app.calls import lookup as lookup_module
from app.calls import service
from app.calls.lookup import APPLICATION_NAME, RingLookup, psycopg_dsn
from app.calls.models import Call
from app.calls.presence import set_presence
from app.db import make_engine, make_sessionmaker, transaction
from tests.calls.test_call_service import add_customer, ringing
from tests.conftest import _pg_admin, need

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_template() -> Iterator[str]:
    from app.migrate import upgrade

    base = os.environ.get("YEBISU_TEST_DATABASE_URL", "")
    need(bool(base), "PostgreSQL (YEBISU_TEST_DATABASE_URL)")
    name = f"yebisu_lk_{uuid.uuid4().hex[:10]}"
    with _pg_admin(base) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{base.rpartition('/')[0]}/{name}"
    upgrade(url)
    yield url
    with _pg_admin(base) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    base, _, tpl = pg_template.rpartition("/")
    name = f"yebisu_lt_{uuid.uuid4().hex[:10]}"
    with _pg_admin(pg_template.rpartition("/")[0] + "/postgres") as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"')
    yield f"{base}/{name}"
    with _pg_admin(pg_template.rpartition("/")[0] + "/postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def maker(pg_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(pg_url)
    async with transaction(make_sessionmaker(engine)) as s:
        a = await create_staff(
            s, login="a", name="古賀 雅美", password="password123", extension="201"
        )
        await set_presence(s, staff_id=a.id, state="available", extension="201", line="main")
        await add_customer(s, "00000003", "北田 君子", "キタダ キミコ", "03-1234-5678")
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def lookup(pg_url: str) -> AsyncIterator[RingLookup]:
    made = service.ring_lookup_for(pg_url)
    assert made is not None
    await made.start()
    yield made
    await made.stop()


Seen = list[tuple[list[int], str, bool]]


async def ring(maker: async_sessionmaker[AsyncSession], call_id: str, lookup: RingLookup) -> Seen:
    """One first ring through the service; what was pushed, and whether the session had
    touched the database by then."""
    seen: Seen = []
    async with transaction(maker) as s:

        async def push(deliveries: list[service.Delivery]) -> None:
            seen.extend((d.staff_ids, d.html, s.in_transaction()) for d in deliveries)

        await service.handle_event(
            s, event=ringing(call_id, "+81312345678", ext="201"), push=push, lookup=lookup
        )
    return seen


def lookup_backends(url: str) -> list[int]:
    with _pg_admin(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            (APPLICATION_NAME, url.rpartition("/")[2]),
        ).fetchall()
    return [r[0] for r in rows]


def test_only_postgresql_urls_get_dedicated_connections() -> None:
    assert service.ring_lookup_for("sqlite+aiosqlite:///var/yebisu.db") is None
    assert psycopg_dsn("postgresql+psycopg://cti:s3cret@db.local:5433/yebisu") == (
        "postgresql://cti:s3cret@db.local:5433/yebisu"
    )


async def test_pop_goes_out_before_the_session_touches_the_database(
    maker: async_sessionmaker[AsyncSession], lookup: RingLookup, pg_url: str
) -> None:
    assert len(lookup_backends(pg_url)) == 2
    ((targets, html, session_used),) = await ring(maker, "k1", lookup)
    assert "北田 君子" in html and "00000003" in html and len(targets) == 1
    assert session_used is False  # no pool checkout, no BEGIN before the pop
    async with maker() as s:
        assert (await s.scalars(select(Call.source_call_id))).all() == ["k1"]


async def test_lost_connections_fall_back_to_the_session_and_come_back(
    maker: async_sessionmaker[AsyncSession],
    lookup: RingLookup,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lookup_module, "RETRY_S", 0.05)
    with _pg_admin(pg_url) as conn:
        for pid in lookup_backends(pg_url):
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # Each of the two dead connections is found out by one call; both calls still pop.
    for call_id in ("k2", "k3"):
        ((_targets, html, session_used),) = await ring(maker, call_id, lookup)
        assert "北田 君子" in html and session_used is True
    for _ in range(100):
        if len(lookup_backends(pg_url)) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(lookup_backends(pg_url)) == 2
    ((_targets, html, session_used),) = await ring(maker, "k4", lookup)
    assert "北田 君子" in html and session_used is False


async def test_calls_ringing_together_never_wait_for_a_busy_connection(
    maker: async_sessionmaker[AsyncSession], pg_url: str
) -> None:
    one = RingLookup(psycopg_dsn(pg_url) or "", service._RING_PG_RAW, size=1)
    await one.start()
    try:
        results = await asyncio.gather(*(ring(maker, f"t{i}", one) for i in range(4)))
    finally:
        await one.stop()
    assert all("北田 君子" in seen[0][1] for seen in results)
    used = sorted(seen[0][2] for seen in results)
    assert used[0] is False and used[-1] is True  # one on the connection, the rest on sessions
