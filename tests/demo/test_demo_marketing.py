"""Demo campaigns, cancel reasons and survey (load_marketing): idempotent, and the campaigns
in force today are what order entry would apply."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from app.db import make_engine, make_sessionmaker, transaction
from app.demo.service import load_marketing, load_masters
from app.masters.models import Campaign, CancelReason, Survey, SurveyChoice, SurveyQuestion
from app.orders.campaigns import campaigns_on

TODAY = dt.date(2025, 4, 21)


async def test_load_marketing_is_idempotent_and_in_force_today(database_url: str) -> None:
    engine = make_engine(database_url)
    maker = make_sessionmaker(engine)
    try:
        for _ in range(2):
            async with transaction(maker) as s:
                await load_masters(s)
                await load_marketing(s, today=TODAY)

        async def count(s: Any, model: Any) -> int:
            return int(await s.scalar(select(func.count()).select_from(model)) or 0)

        async with transaction(maker) as s:
            counts = [
                await count(s, m)
                for m in (Campaign, CancelReason, Survey, SurveyQuestion, SurveyChoice)
            ]
            assert counts == [5, 10, 1, 4, 16]
            in_force = [c.code for c in await campaigns_on(s, on=TODAY)]
            gift = await s.scalar(select(Campaign).where(Campaign.code == "TAPEGIFT"))
    finally:
        await engine.dispose()
    assert in_force == ["FS10000", "NEW500", "PLAT5", "TAPEGIFT"]  # not the ended SUMMER
    assert gift is not None and gift.product_id and gift.present_product_id
