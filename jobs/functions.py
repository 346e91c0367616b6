"""The job functions. Each is registered by name and runs the same in the arq worker and
in-process (``app.runs.runtime``): ``fn(sessionmaker, progress, params, settings) -> message``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.dates import JST
from app.db import transaction
from app.runs.registry import Progress, job

SUBSCRIPTION_DAILY = "subscription_daily"
RANK_RECALCULATION = "rank_recalculation"


def _day(params: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(str(params["date"]))


@job(SUBSCRIPTION_DAILY, "定期受注の作成（日次）", daily=True)
async def subscription_daily(
    sessionmaker: async_sessionmaker[AsyncSession],
    progress: Progress,
    params: dict[str, Any],
    settings: Settings,
) -> str:
    """The day's subscription orders (S2)."""
    from app.subscriptions.daily import run_daily

    today = (
        dt.date.fromisoformat(str(params["today"]))
        if params.get("today")
        else dt.datetime.now(JST).date()
    )
    result = await run_daily(
        sessionmaker,
        day=_day(params),
        today=today,
        orders=settings.orders,
        progress=progress,
        staff_id=params.get("staff_id"),
    )
    return result.message


@job(RANK_RECALCULATION, "ランク再計算", daily=True)
async def rank_recalculation(
    sessionmaker: async_sessionmaker[AsyncSession],
    progress: Progress,
    params: dict[str, Any],
    settings: Settings,
) -> str:
    """Every customer's rank as of the day (R1)."""
    from app.orders.ranks import recalculate_ranks

    async with transaction(sessionmaker) as session:
        changed = await recalculate_ranks(session, today=_day(params))
    return f"ランク変更 {changed:,}件"
