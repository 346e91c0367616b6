"""The job registry: a job is a name, a Japanese label and an async function

    fn(sessionmaker, progress, params, settings) -> message

that runs the same way in-process and in the arq worker. Jobs register themselves with
:func:`job` in ``jobs/functions.py``; :func:`registry` loads them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings

Progress = Callable[[int, int, str], Awaitable[None]]  # (done, total, message)
JobFunction = Callable[
    [async_sessionmaker[AsyncSession], Progress, dict[str, Any], Settings], Awaitable[str]
]


@dataclass(frozen=True)
class JobDef:
    name: str
    label: str
    fn: JobFunction
    daily: bool = False  # takes params {"date": "YYYY-MM-DD"} and is caught up when missed


_JOBS: dict[str, JobDef] = {}


def job(name: str, label: str, *, daily: bool = False) -> Callable[[JobFunction], JobFunction]:
    """Register ``fn`` as the job ``name``."""

    def add(fn: JobFunction) -> JobFunction:
        _JOBS[name] = JobDef(name=name, label=label, fn=fn, daily=daily)
        return fn

    return add


def registry() -> dict[str, JobDef]:
    """Every registered job by name."""
    import jobs.functions  # noqa: F401  (registers the jobs)

    return _JOBS
