"""Search by phone in any format, name, kana in any script, code, e-mail (M4)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.customers.models import CustomerEmail
from app.customers.service import search_customers
from app.db import make_engine, make_sessionmaker, transaction
from tests.factories import add_customer


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def people(database_url: str) -> dict[str, int]:
    return {
        "taro": add_customer(
            database_url, "佐賀 太郎", "サガ タロウ", "0952-32-6611", "090-9999-9999"
        ),
        "hanako": add_customer(database_url, "佐賀 花子", "サガ ハナコ", "0952-32-6611"),
        "kimiko": add_customer(database_url, "北田 君子", "キタダ キミコ", "03-1234-5678"),
    }


async def names(maker: async_sessionmaker[AsyncSession], q: str) -> tuple[str, list[str]]:
    async with maker() as s:
        result = await search_customers(s, q=q)
    return result.how, [c.name for c in result.cards]


@pytest.mark.parametrize("q", ["さが", "サガ", "ｻｶﾞ", "サガ　", " さ が "])
async def test_kana_in_any_script_and_spacing(
    maker: async_sessionmaker[AsyncSession], people: dict[str, int], q: str
) -> None:
    assert await names(maker, q) == ("kana", ["佐賀 太郎", "佐賀 花子"])


@pytest.mark.parametrize(
    "q", ["0952-32-6611", "0952326611", "０９５２ー３２ー６６１１", "+81952326611"]
)
async def test_phone_in_any_format_finds_the_family(
    maker: async_sessionmaker[AsyncSession], people: dict[str, int], q: str
) -> None:
    assert await names(maker, q) == ("phone", ["佐賀 太郎", "佐賀 花子"])


async def test_name_code_and_email(
    maker: async_sessionmaker[AsyncSession], people: dict[str, int]
) -> None:
    assert await names(maker, "佐賀太郎") == ("name", ["佐賀 太郎"])
    assert await names(maker, "北田") == ("name", ["北田 君子"])
    assert await names(maker, f"{people['kimiko']:08d}") == ("code", ["北田 君子"])
    async with transaction(maker) as s:
        s.add(CustomerEmail(customer_id=people["taro"], address="sagataro@example.jp"))
    assert await names(maker, "sagataro@example.jp") == ("email", ["佐賀 太郎"])
    assert await names(maker, "いない人") == ("name", [])
    assert await names(maker, "いない") == ("kana", [])
