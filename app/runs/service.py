"""Job runs: create, execute (progress, failure, re-run) and list them."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import traceback
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.models import Staff
from app.config import Settings
from app.db import utcnow
from app.runs.models import JobRun
from app.runs.registry import registry

log = logging.getLogger(__name__)
MAX_ERROR = 4000
INTERRUPTED = "中断されました（サーバーの停止）。再実行できます。"
ABANDONED = "サーバーの再起動で中断されました。再実行できます。"


class JobError(ValueError):
    """A job that cannot be started (unknown job, a run of the same day already running)."""


async def create_run(
    session: AsyncSession,
    *,
    name: str,
    params: dict[str, Any] | None = None,
    staff_id: int | None = None,
    trigger: str = "manual",
) -> JobRun:
    """A queued run of job ``name``; a daily job's ``params["date"]`` is its ``run_for``.
    Refused while a run of the same job and day is queued or running."""
    found = registry().get(name)
    if found is None:
        raise JobError(f"不明なジョブです: {name}")
    params = dict(params or {})
    run_for = dt.date.fromisoformat(params["date"]) if "date" in params else None
    busy = await session.scalar(
        select(JobRun.id).where(
            JobRun.name == name,
            JobRun.run_for == run_for if run_for is not None else JobRun.run_for.is_(None),
            JobRun.status.in_(("queued", "running")),
            JobRun.created_at > utcnow() - dt.timedelta(hours=6),
        )
    )
    if busy is not None:
        raise JobError("同じジョブが実行中です。終わるまでお待ちください。")
    run = JobRun(
        name=name,
        params=params,
        run_for=run_for,
        status="queued",
        staff_id=staff_id,
        trigger=trigger,
        message="",
        error="",
    )
    session.add(run)
    await session.flush()
    return run


async def execute(
    sessionmaker: async_sessionmaker[AsyncSession], run_id: int, settings: Settings
) -> JobRun | None:
    """Run a queued (or failed, being re-run) job run to its end, recording progress and the
    outcome; an exception marks the run failed with its error. Returns the finished run."""
    async with sessionmaker() as session, session.begin():
        claimed = await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.status == "queued")
            .values(status="running", started_at=utcnow(), error="", progress_done=0)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None  # unknown, or another worker took it
        run = await session.get(JobRun, run_id)
        assert run is not None
        # The job sees who started this run (a re-run is the re-runner's, not the first's).
        name, params = run.name, {**(run.params or {}), "staff_id": run.staff_id}

    async def progress(done: int, total: int, message: str) -> None:
        async with sessionmaker() as s, s.begin():
            await s.execute(
                update(JobRun)
                .where(JobRun.id == run_id)
                .values(progress_done=done, progress_total=total, message=message[:2000])
            )

    try:
        found = registry().get(name)
        if found is None:
            raise JobError(f"不明なジョブです: {name}")
        message = await found.fn(sessionmaker, progress, params, settings)
    except asyncio.CancelledError:
        # Stopped (the server shutting down): the run is not left 実行中 for ever.
        log.warning("job %s (run %s) interrupted", name, run_id)
        await asyncio.shield(_mark_interrupted(sessionmaker, [run_id], INTERRUPTED))
        raise
    except Exception as exc:
        log.exception("job %s (run %s) failed", name, run_id)
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        detail = traceback.format_exc(limit=8)
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(JobRun)
                .where(JobRun.id == run_id)
                .values(
                    status="failed",
                    finished_at=utcnow(),
                    error=f"{text}\n\n{detail}"[:MAX_ERROR],
                )
            )
    else:
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(JobRun)
                .where(JobRun.id == run_id)
                .values(status="done", finished_at=utcnow(), message=message[:2000])
            )
    async with sessionmaker() as session:
        return await session.get(JobRun, run_id)


async def _mark_interrupted(
    sessionmaker: async_sessionmaker[AsyncSession], run_ids: list[int], why: str
) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(JobRun)
            .where(JobRun.id.in_(run_ids), JobRun.status.in_(("queued", "running")))
            .values(status="failed", finished_at=utcnow(), error=why)
        )


async def fail_abandoned(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """Runs left queued or running by a process that is gone (the embedded default runs its
    jobs in its own process, so at its start none can still be under way): marked failed,
    so they can be re-run and the catch-up is not held back by them."""
    async with sessionmaker() as session:
        ids = list(
            (
                await session.scalars(
                    select(JobRun.id).where(JobRun.status.in_(("queued", "running")))
                )
            ).all()
        )
    if ids:
        await _mark_interrupted(sessionmaker, ids, ABANDONED)
    return len(ids)


async def rerun(session: AsyncSession, *, run_id: int, staff_id: int | None) -> JobRun:
    """A new queued run with the same job and parameters as a finished run."""
    old = await session.get(JobRun, run_id)
    if old is None:
        raise JobError("ジョブが見つかりません。")
    if not old.finished:
        raise JobError("実行中のジョブは再実行できません。")
    # "today" is when a catch-up ran: a re-run is dated by its own day.
    params = {k: v for k, v in (old.params or {}).items() if k != "today"}
    return await create_run(
        session, name=old.name, params=params, staff_id=staff_id, trigger="rerun"
    )


@dataclass
class RunRow:
    run: JobRun
    label: str
    staff: str


async def list_runs(session: AsyncSession, *, limit: int = 100, status: str = "") -> list[RunRow]:
    """The latest runs, newest first (only ``status`` when given)."""
    stmt = (
        select(JobRun, Staff.name)
        .outerjoin(Staff, Staff.id == JobRun.staff_id)
        .order_by(JobRun.id.desc())
        .limit(limit)
    )
    if status:
        stmt = stmt.where(JobRun.status == status)
    jobs = registry()
    return [
        RunRow(run=r, label=jobs[r.name].label if r.name in jobs else r.name, staff=s or "—")
        for r, s in (await session.execute(stmt)).all()
    ]
