"""arq worker settings (``yebisu worker``)."""

from __future__ import annotations

from typing import Any, ClassVar

from arq import run_worker as arq_run_worker
from arq.connections import RedisSettings
from arq.typing import WorkerCoroutine

from app.config import Settings, load_settings
from app.db import make_engine, make_sessionmaker


async def ping(ctx: dict[str, Any]) -> str:
    """A trivial job used to check that a worker is alive."""
    return "pong"


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx.get("settings") or load_settings()
    ctx["settings"] = settings
    ctx["engine"] = make_engine(settings.database.url)
    ctx["sessionmaker"] = make_sessionmaker(ctx["engine"])


async def shutdown(ctx: dict[str, Any]) -> None:
    engine = ctx.get("engine")
    if engine is not None:
        await engine.dispose()


class WorkerSettings:
    """Referenced by ``arq jobs.worker.WorkerSettings``; ``redis_settings`` from the config."""

    functions: ClassVar[list[WorkerCoroutine]] = [ping]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings()


def worker_settings(settings: Settings) -> dict[str, Any]:
    return {
        "functions": WorkerSettings.functions,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis.url),
        "queue_name": f"{settings.redis.channel_prefix}:arq:queue",
        "ctx": {"settings": settings},
    }


def run_worker(settings: Settings) -> int:
    """Run the arq worker until interrupted."""
    arq_run_worker(WorkerSettings, **worker_settings(settings))  # type: ignore[arg-type]
    return 0
