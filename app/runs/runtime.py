"""In-process jobs for the embedded default (no Redis): the daily jobs at their hour, the
days missed while the server was down caught up at start, and runs started from a screen.
With Redis configured the arq worker (``yebisu worker``) does the scheduling and runs
started from a screen are queued to it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.runs.schedule import catch_up, daily_jobs, local_now, run_day
from app.runs.service import execute, fail_abandoned

log = logging.getLogger(__name__)
TICK_S = 30.0
START_DELAY_S = 2.0  # the catch-up waits this long after start (a quick start/stop skips it)
STOP_WAIT_S = 5.0  # on stop, work under way gets this long to finish before it is cancelled


class JobRuntime:
    """Started and stopped by the app's lifespan."""

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.tasks: set[asyncio.Task[Any]] = set()
        self.scheduler: asyncio.Task[None] | None = None
        self.arq: Any = None
        self.busy = False  # the scheduler is running a job (not sleeping)
        self.stopping = False

    @property
    def scheduling(self) -> bool:
        """Whether this process runs the daily jobs (no Redis, in_process on)."""
        return not self.settings.redis.url and self.settings.jobs.in_process

    async def start(self) -> None:
        if not self.settings.redis.url:
            # Every run of the embedded default runs in this process: one still marked as
            # under way was cut off when the server last stopped.
            found = await fail_abandoned(self.sessionmaker)
            if found:
                log.warning("%d job run(s) cut off by the last stop marked failed", found)
        if self.scheduling:
            self.scheduler = asyncio.create_task(self._schedule(), name="yebisu-jobs")

    async def stop(self) -> None:
        """Stop scheduling; runs under way get a moment to finish (a run cut short is safe:
        the next one makes what is missing and nothing twice)."""
        self.stopping = True
        if self.scheduler is not None and not self.busy:
            self.scheduler.cancel()
        tasks = [*self.tasks, *([self.scheduler] if self.scheduler else [])]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=STOP_WAIT_S)
            for task in pending:
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.arq is not None:
            await self.arq.aclose()
            self.arq = None

    async def submit(self, run_id: int) -> None:
        """Run a queued job run: through the arq worker when Redis is configured, else here."""
        if self.settings.redis.url:
            from jobs.worker import enqueue_run

            self.arq = await enqueue_run(self.settings, run_id, pool=self.arq)
            return
        self._spawn(execute(self.sessionmaker, run_id, self.settings))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _schedule(self) -> None:
        await asyncio.sleep(START_DELAY_S)
        previous = local_now(self.settings)
        self.busy = True
        try:
            await catch_up(self.sessionmaker, self.settings)
        except Exception:
            log.exception("catching up the daily jobs failed")
        finally:
            self.busy = False
        while not self.stopping:
            await asyncio.sleep(TICK_S)
            now = local_now(self.settings)
            self.busy = True
            try:
                await self.tick(previous, now)
            finally:
                self.busy = False
            previous = now

    async def tick(self, previous: dt.datetime, now: dt.datetime) -> None:
        """Run each daily job whose hour came between ``previous`` and ``now``."""
        for name, hour in daily_jobs(self.settings).items():
            at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
            if previous < at <= now:
                try:
                    await run_day(
                        self.sessionmaker, self.settings, name=name, day=now.date(), trigger="cron"
                    )
                except Exception:
                    log.exception("daily job %s failed to start", name)
