"""Small builders of test data through the real services and models."""

from __future__ import annotations

from typing import Any

from app.customers.keys import kana_key, name_key
from app.customers.models import Customer, CustomerPhone
from app.db import make_engine, make_sessionmaker, transaction
from cti_bridge.numbers import last8, normalise_stored


async def _add_customer(url: str, name: str, kana: str, phones: tuple[str, ...], **kw: Any) -> int:
    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            c = Customer(
                code=kw.pop("code", "tmp"),
                name=name,
                kana=kana,
                name_key=name_key(name),
                kana_key=kana_key(kana),
                prefecture=kw.pop("prefecture", "佐賀県"),
                city=kw.pop("city", "佐賀市"),
                street=kw.pop("street", "鍋島3-2"),
                flags={},
                **kw,
            )
            for i, raw in enumerate(phones):
                e164 = normalise_stored(raw).number_e164
                c.phones.append(
                    CustomerPhone(raw=raw, e164=e164, last8=last8(e164), kind="home", position=i)
                )
            s.add(c)
            await s.flush()
            if c.code == "tmp":
                c.code = f"{c.id:08d}"
            return c.id
    finally:
        await engine.dispose()


def add_customer(url: str, name: str, kana: str, *phones: str, **kw: Any) -> int:
    """Create a customer with these phones; returns its id."""
    from tests.conftest import run_async

    return int(run_async(_add_customer(url, name, kana, phones, **kw)))


async def _add_masters(url: str) -> None:
    from app.demo.service import load_masters

    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            await load_masters(s)
    finally:
        await engine.dispose()


def add_masters(url: str) -> None:
    """Load the demo masters: ranks, ads, products (sets and companions), carriers, shipping
    rates by prefecture, FAQs."""
    from tests.conftest import run_async

    run_async(_add_masters(url))
