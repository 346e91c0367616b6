"""ランク再計算 (R1): customers' ranks from the rank master (filled in by the masters issue)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession


async def recalculate_ranks(session: AsyncSession, *, today: dt.date) -> int:
    """Recalculate every customer's rank as of ``today``; return how many changed."""
    raise NotImplementedError
