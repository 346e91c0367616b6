"""Daily jobs: which days are due (the hour from the config), and catching up days missed
while the server was down. Shared by the in-process runtime and the arq worker."""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.runs.models import JobRun
from app.runs.service import JobError, create_run, execute

log = logging.getLogger(__name__)
SCHEDULED = ("cron", "catch_up")


def daily_jobs(settings: Settings) -> dict[str, int]:
    """Daily job name -> the hour (server time zone) it runs at."""
    from jobs.functions import RANK_RECALCULATION, SUBSCRIPTION_DAILY

    return {
        SUBSCRIPTION_DAILY: settings.jobs.subscription_hour,
        RANK_RECALCULATION: settings.jobs.rank_hour,
    }


def local_now(settings: Settings) -> dt.datetime:
    return dt.datetime.now(ZoneInfo(settings.server.timezone))


def last_due_day(now: dt.datetime, hour: int) -> dt.date:
    """The latest day whose run time (``hour`` o'clock) has passed at ``now`` (local)."""
    return now.date() if now.hour >= hour else now.date() - dt.timedelta(days=1)


def missed_days(
    *, last_done: dt.date | None, now: dt.datetime, hour: int, catch_up_days: int
) -> list[dt.date]:
    """Days to catch up: after the last day done up to the latest due day, at most
    ``catch_up_days`` back. Nothing when the job never ran (a new installation)."""
    if last_done is None or catch_up_days <= 0:
        return []
    latest = last_due_day(now, hour)
    first = max(last_done + dt.timedelta(days=1), latest - dt.timedelta(days=catch_up_days - 1))
    return [first + dt.timedelta(days=i) for i in range((latest - first).days + 1)]


async def last_scheduled_day(session: AsyncSession, *, name: str) -> dt.date | None:
    """The latest day a scheduled (cron or catch-up) run of ``name`` finished for."""
    day: dt.date | None = await session.scalar(
        select(func.max(JobRun.run_for)).where(
            JobRun.name == name, JobRun.status == "done", JobRun.trigger.in_(SCHEDULED)
        )
    )
    return day


async def run_day(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    name: str,
    day: dt.date,
    trigger: str,
    today: dt.date | None = None,
) -> JobRun | None:
    """Run the daily job ``name`` for ``day`` now, unless a scheduled run did that day already
    or a run of it is under way. ``today``: the day it really runs on, when that is later
    (a catch-up: what it makes is dated from today, not from the day missed)."""
    async with sessionmaker() as session, session.begin():
        done = await session.scalar(
            select(JobRun.id).where(
                JobRun.name == name,
                JobRun.run_for == day,
                JobRun.status == "done",
                JobRun.trigger.in_(SCHEDULED),
            )
        )
        if done is not None:
            return None
        try:
            params = {"date": day.isoformat(), "today": max(day, today or day).isoformat()}
            run = await create_run(session, name=name, params=params, trigger=trigger)
        except JobError:
            return None
        run_id = run.id
    return await execute(sessionmaker, run_id, settings)


async def catch_up(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    names: tuple[str, ...] | None = None,
) -> list[JobRun]:
    """Run every daily job for the days missed since its last scheduled run, oldest first."""
    now = now or local_now(settings)
    runs: list[JobRun] = []
    for name, hour in daily_jobs(settings).items():
        if names is not None and name not in names:
            continue
        async with sessionmaker() as session:
            last = await last_scheduled_day(session, name=name)
        for day in missed_days(
            last_done=last, now=now, hour=hour, catch_up_days=settings.jobs.catch_up_days
        ):
            log.info("catching up %s for %s", name, day)
            run = await run_day(
                sessionmaker, settings, name=name, day=day, trigger="catch_up", today=now.date()
            )
            if run is not None:
                runs.append(run)
    return runs
