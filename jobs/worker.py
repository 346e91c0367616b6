"""arq worker settings (``yebisu worker``): the job runs queued from the screens, the daily
jobs as cron jobs at their configured hours, and a catch-up of missed days at start."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from arq import cron
from arq import run_worker as arq_run_worker
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.cron import CronJob
from arq.typing import WorkerCoroutine

from app.config import Settings, load_settings
from app.db import make_engine, make_sessionmaker


async def ping(ctx: dict[str, Any]) -> str:
    """A trivial job used to check that a worker is alive."""
    return "pong"


async def run_job(ctx: dict[str, Any], run_id: int) -> str:
    """Execute a queued job run (created by a screen or a re-run)."""
    from app.runs.service import execute

    run = await execute(ctx["sessionmaker"], run_id, ctx["settings"])
    return run.status if run is not None else "skipped"


async def _daily(ctx: dict[str, Any], name: str) -> str:
    from app.runs.schedule import local_now, run_day

    settings: Settings = ctx["settings"]
    day: dt.date = local_now(settings).date()
    run = await run_day(ctx["sessionmaker"], settings, name=name, day=day, trigger="cron")
    return run.status if run is not None else "skipped"


async def subscription_cron(ctx: dict[str, Any]) -> str:
    """The daily subscription run (S2) for today."""
    from jobs.functions import SUBSCRIPTION_DAILY

    return await _daily(ctx, SUBSCRIPTION_DAILY)


async def rank_cron(ctx: dict[str, Any]) -> str:
    """The nightly rank recalculation for today."""
    from jobs.functions import RANK_RECALCULATION

    return await _daily(ctx, RANK_RECALCULATION)


async def startup(ctx: dict[str, Any]) -> None:
    from app.runs.schedule import catch_up

    settings: Settings = ctx.get("settings") or load_settings()
    ctx["settings"] = settings
    ctx["engine"] = make_engine(settings.database.url)
    ctx["sessionmaker"] = make_sessionmaker(ctx["engine"])
    if ctx.get("catch_up", True):
        await catch_up(ctx["sessionmaker"], settings)


async def shutdown(ctx: dict[str, Any]) -> None:
    engine = ctx.get("engine")
    if engine is not None:
        await engine.dispose()


JOB_TIMEOUT_S = 3600  # a daily run over a large database may take minutes, never an hour

FUNCTIONS: list[WorkerCoroutine] = [ping, run_job]


def cron_jobs(settings: Settings) -> list[CronJob]:
    """The daily jobs at their hours; ``unique`` so that two workers run each once."""
    return [
        cron(
            subscription_cron,
            hour=settings.jobs.subscription_hour,
            minute=0,
            unique=True,
            timeout=JOB_TIMEOUT_S,
        ),
        cron(rank_cron, hour=settings.jobs.rank_hour, minute=0, unique=True, timeout=JOB_TIMEOUT_S),
    ]


class WorkerSettings:
    """Referenced by ``arq jobs.worker.WorkerSettings``; ``redis_settings`` from the config."""

    functions: ClassVar[list[WorkerCoroutine]] = FUNCTIONS
    cron_jobs: ClassVar[list[CronJob]] = cron_jobs(Settings())
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings()


def queue_name(settings: Settings) -> str:
    return f"{settings.redis.channel_prefix}:arq:queue"


def worker_settings(settings: Settings) -> dict[str, Any]:
    return {
        "functions": FUNCTIONS,
        "cron_jobs": cron_jobs(settings),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis.url),
        "queue_name": queue_name(settings),
        "timezone": ZoneInfo(settings.server.timezone),
        "job_timeout": JOB_TIMEOUT_S,
        "ctx": {"settings": settings},
    }


async def enqueue_run(settings: Settings, run_id: int, *, pool: ArqRedis | None = None) -> ArqRedis:
    """Queue a job run for the worker; returns the (reusable) Redis pool."""
    pool = pool or await create_pool(RedisSettings.from_dsn(settings.redis.url))
    # No fixed job id: execute() claims a run once, however often it is queued.
    await pool.enqueue_job("run_job", run_id, _queue_name=queue_name(settings))
    return pool


def run_worker(settings: Settings) -> int:
    """Run the arq worker until interrupted."""
    arq_run_worker(WorkerSettings, **worker_settings(settings))  # type: ignore[arg-type]
    return 0
