"""The jobs framework: daily jobs on schedule and caught up after a gap, runs with progress,
failures visible with their error and re-run, and a real arq worker running the cron job."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import warnings
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import make_engine, make_sessionmaker, transaction
from app.runs.models import JobRun
from app.runs.registry import Progress, job
from app.runs.runtime import JobRuntime
from app.runs.schedule import catch_up, missed_days
from app.runs.service import create_run, execute, rerun
from jobs.functions import SUBSCRIPTION_DAILY
from tests.conftest import csrf_of, login, need, run_async
from tests.factories import add_customer, add_masters
from tests.orders.test_history import in_db, tables
from tests.subscriptions.helpers import add_subscription, orders_of, subscription

D = dt.date
JST = ZoneInfo("Asia/Tokyo")


@job("test_failing", "テスト用（失敗）")
async def failing(
    sessionmaker: async_sessionmaker[AsyncSession],
    progress: Progress,
    params: dict[str, Any],
    settings: Settings,
) -> str:
    await progress(1, 4, "途中")
    raise RuntimeError("在庫ファイルが見つかりません")


@job("test_slow", "テスト用（長時間）")
async def slow(
    sessionmaker: async_sessionmaker[AsyncSession],
    progress: Progress,
    params: dict[str, Any],
    settings: Settings,
) -> str:
    await progress(1, 10, "途中")
    await asyncio.sleep(60)
    return "終わり"


def test_a_run_cut_off_by_a_stop_is_failed_and_can_be_run_again(
    database_url: str, settings: Settings
) -> None:
    async def go(maker: async_sessionmaker[AsyncSession]) -> JobRun:
        async with transaction(maker) as s:
            run_id = (await create_run(s, name="test_slow", params={})).id
        task = asyncio.create_task(execute(maker, run_id, settings))
        for _ in range(200):
            async with maker() as s:
                found = await s.get(JobRun, run_id)
                if found is not None and found.progress_done == 1:
                    break
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with transaction(maker) as s:
            again = await rerun(s, run_id=run_id, staff_id=None)
            assert again.status == "queued"
        async with maker() as s:
            cut = await s.get(JobRun, run_id)
            assert cut is not None
            return cut

    cut = run_async(_with_maker(database_url, go))
    assert cut.status == "failed" and "中断されました" in cut.error


def test_runs_left_under_way_by_a_dead_server_are_failed_at_start(
    database_url: str, settings: Settings
) -> None:
    settings.redis.url = ""

    async def go(maker: async_sessionmaker[AsyncSession]) -> list[JobRun]:
        async with transaction(maker) as s:
            run = await create_run(s, name="test_slow", params={})
            run.status = "running"
        runtime = JobRuntime(settings, maker)
        await runtime.start()
        await runtime.stop()
        async with maker() as s:
            return list(await s.scalars(select(JobRun)))

    (run,) = run_async(_with_maker(database_url, go))
    assert run.status == "failed" and "再起動で中断" in run.error


def test_missed_days_between_the_last_run_and_now() -> None:
    at = dt.datetime(2026, 3, 5, 7, 0, tzinfo=JST)
    assert missed_days(last_done=D(2026, 3, 2), now=at, hour=6, catch_up_days=31) == [
        D(2026, 3, 3),
        D(2026, 3, 4),
        D(2026, 3, 5),
    ]
    early = at.replace(hour=5)
    assert missed_days(last_done=D(2026, 3, 2), now=early, hour=6, catch_up_days=31) == [
        D(2026, 3, 3),
        D(2026, 3, 4),
    ]
    assert missed_days(last_done=D(2026, 3, 5), now=at, hour=6, catch_up_days=31) == []
    assert missed_days(last_done=D(2026, 1, 1), now=at, hour=6, catch_up_days=2) == [
        D(2026, 3, 4),
        D(2026, 3, 5),
    ]
    assert missed_days(last_done=None, now=at, hour=6, catch_up_days=31) == []
    assert missed_days(last_done=D(2026, 3, 2), now=at, hour=6, catch_up_days=0) == []


async def _with_maker(url: str, fn: Any) -> Any:
    engine = make_engine(url)
    try:
        return await fn(make_sessionmaker(engine))
    finally:
        await engine.dispose()


def _runs(url: str) -> list[JobRun]:
    async def go(s: AsyncSession) -> list[JobRun]:
        return list(await s.scalars(select(JobRun).order_by(JobRun.id)))

    found: list[JobRun] = in_db(url, go)
    return found


def _done_run(url: str, name: str, day: dt.date) -> None:
    async def go(s: AsyncSession) -> None:
        s.add(
            JobRun(
                name=name,
                params={"date": day.isoformat()},
                run_for=day,
                status="done",
                trigger="cron",
            )
        )

    in_db(url, go)


def test_days_missed_while_the_server_was_down_are_caught_up(
    database_url: str, settings: Settings
) -> None:
    add_masters(database_url)
    cid = add_customer(database_url, "佐野 小枝子", "サノ サエコ", "0952-26-5555")
    _done_run(database_url, SUBSCRIPTION_DAILY, D(2026, 3, 1))
    weekly = add_subscription(
        database_url, customer_id=cid, next_date=D(2026, 3, 2), unit="week", n=1
    )
    monthly = add_subscription(database_url, customer_id=cid, next_date=D(2026, 3, 4))
    now = dt.datetime(2026, 3, 9, 8, 0, tzinfo=JST)

    runs = run_async(
        _with_maker(
            database_url,
            lambda m: catch_up(m, settings, now=now, names=(SUBSCRIPTION_DAILY,)),
        )
    )
    assert [(r.run_for, r.status, r.trigger) for r in runs] == [
        (D(2026, 3, d), "done", "catch_up") for d in range(2, 10)
    ]
    assert [o.subscription_due_on for o in orders_of(database_url, weekly)] == [
        D(2026, 3, 2),
        D(2026, 3, 9),
    ]
    # Made on the day the server came back (nothing dated in the past), due dates kept.
    assert [(o.subscription_due_on, o.received_on) for o in orders_of(database_url, monthly)] == [
        (D(2026, 3, 4), D(2026, 3, 9))
    ]
    assert all(o.ship_on >= D(2026, 3, 9) for o in orders_of(database_url, weekly))
    assert subscription(database_url, weekly).next_date == D(2026, 3, 16)
    assert subscription(database_url, monthly).next_date == D(2026, 4, 4)
    # Starting again finds nothing more to do.
    again = run_async(
        _with_maker(
            database_url,
            lambda m: catch_up(m, settings, now=now, names=(SUBSCRIPTION_DAILY,)),
        )
    )
    assert again == []


def test_the_in_process_runtime_runs_a_daily_job_when_its_hour_comes(
    database_url: str, settings: Settings
) -> None:
    add_masters(database_url)
    cid = add_customer(database_url, "北田 君子", "キタダ キミコ", "0985-22-1111")
    day = D(2026, 5, 11)
    sid = add_subscription(database_url, customer_id=cid, next_date=day)
    hour = settings.jobs.subscription_hour

    async def go(maker: async_sessionmaker[AsyncSession]) -> None:
        runtime = JobRuntime(settings, maker)
        before = dt.datetime.combine(day, dt.time(hour - 1, 59), JST)
        at = dt.datetime.combine(day, dt.time(hour, 0, 30), JST)
        await runtime.tick(before - dt.timedelta(minutes=1), before)  # not yet
        assert orders_of(database_url, sid) == []
        await runtime.tick(before, at)
        await runtime.tick(at, at + dt.timedelta(seconds=30))  # once only

    run_async(_with_maker(database_url, go))
    (order,) = orders_of(database_url, sid)
    assert order.received_on == day
    assert [(r.name, r.trigger) for r in _runs(database_url) if r.name == SUBSCRIPTION_DAILY] == [
        (SUBSCRIPTION_DAILY, "cron")
    ]


@pytest.fixture
def local_jobs(settings: Settings) -> None:
    """Runs started from the screens execute in the app (the arq path has its own test)."""
    settings.redis.url = ""


def test_a_failed_job_shows_its_error_and_can_be_run_again(
    local_jobs: None, client: Any, database_url: str, settings: Settings, make_staff: Any
) -> None:
    make_staff("back", role="backoffice")

    async def go(maker: async_sessionmaker[AsyncSession]) -> JobRun | None:
        async with transaction(maker) as s:
            run = await create_run(s, name="test_failing", params={"file": "stock.csv"})
            run_id = run.id
        return await execute(maker, run_id, settings)

    failed = run_async(_with_maker(database_url, go))
    assert failed is not None and failed.status == "failed"
    assert "RuntimeError: 在庫ファイルが見つかりません" in failed.error
    assert (failed.progress_done, failed.progress_total) == (1, 4)

    login(client, "back")
    page = client.get("/jobs?status=failed")
    row = tables(page.text)["jobs-table"].rows[0].cells
    assert row[1] == "テスト用（失敗）"
    assert "失敗" in row[6] and "在庫ファイルが見つかりません" in row[6]
    again = client.post(f"/jobs/{failed.id}/rerun", data={"csrf_token": csrf_of(client)})
    assert again.status_code == 200
    assert "再実行を開始しました" in again.text
    for _ in range(50):
        runs = _runs(database_url)
        if len(runs) == 2 and runs[1].finished:
            break
        time.sleep(0.1)
    assert [(r.status, r.trigger, r.params) for r in runs] == [
        ("failed", "manual", {"file": "stock.csv"}),
        ("failed", "rerun", {"file": "stock.csv"}),
    ]
    frag = client.get(f"/jobs/{runs[1].id}/progress")
    assert frag.headers.get("HX-Trigger") == "job-finished"
    assert "hx-trigger" not in frag.text


def test_a_running_jobs_progress_refreshes_itself(
    client: Any, database_url: str, make_staff: Any
) -> None:
    make_staff("back", role="backoffice")

    async def add(s: AsyncSession) -> int:
        run = JobRun(
            name=SUBSCRIPTION_DAILY,
            params={},
            status="running",
            progress_done=250,
            progress_total=1000,
            message="作成中",
        )
        s.add(run)
        await s.flush()
        return run.id

    run_id = in_db(database_url, add)
    login(client, "back")
    frag = client.get(f"/jobs/{run_id}/progress")
    assert 'hx-trigger="load delay:1s"' in frag.text
    assert "250 / 1,000" in frag.text and 'value="25"' in frag.text
    assert "HX-Trigger" not in frag.headers


def test_a_real_arq_worker_runs_the_daily_cron_job_and_queued_runs(
    database_url: str, settings: Settings
) -> None:
    # The embedded run has no Redis in its settings: this test brings the CI Redis in itself.
    settings.redis.url = settings.redis.url or os.environ.get("YEBISU_TEST_REDIS_URL", "")
    need(bool(settings.redis.url), "Redis (YEBISU_TEST_REDIS_URL)")
    from arq import cron
    from arq.worker import Worker

    from jobs.worker import enqueue_run, subscription_cron, worker_settings

    add_masters(database_url)
    cid = add_customer(database_url, "小村 信二", "コムラ シンジ", "0952-26-1111")
    today = dt.datetime.now(JST).date()
    sid = add_subscription(database_url, customer_id=cid, next_date=today)

    async def go() -> None:
        kw = worker_settings(settings)
        (sub_cron, _rank) = kw["cron_jobs"]
        assert (sub_cron.hour, sub_cron.minute) == (settings.jobs.subscription_hour, 0)
        # The same cron function, also fired at the worker's start for the test.
        kw["cron_jobs"] = [
            cron(
                subscription_cron,
                hour=settings.jobs.subscription_hour,
                minute=0,
                run_at_startup=True,
            )
        ]
        kw["ctx"] = {"settings": settings, "catch_up": False}
        worker = Worker(**kw, handle_signals=False, poll_delay=0.1)
        task = asyncio.create_task(worker.main())
        pool = None
        try:
            for _ in range(150):
                if orders_of(database_url, sid):
                    break
                await asyncio.sleep(0.1)
            assert len(orders_of(database_url, sid)) == 1

            async def queue(s: AsyncSession) -> int:
                run = await create_run(s, name="test_failing", params={})
                return run.id

            run_id = in_db(database_url, queue)
            pool = await enqueue_run(settings, run_id)
            for _ in range(150):
                if _runs(database_url)[-1].finished:
                    break
                await asyncio.sleep(0.1)
            assert _runs(database_url)[-1].status == "failed"
            # The run is recorded before arq has finished the job in Redis: closing the worker
            # now would cancel that last step (a CancelledError out of close()).
            for _ in range(100):
                if all(t.done() for t in worker.tasks.values()):
                    break
                await asyncio.sleep(0.05)
        finally:
            if pool is not None:
                await pool.aclose()
            with warnings.catch_warnings():  # arq closes its pool with redis' deprecated close()
                warnings.filterwarnings("ignore", "Call to deprecated close", DeprecationWarning)
                await worker.close()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    run_async(go())
    daily = [r for r in _runs(database_url) if r.name == SUBSCRIPTION_DAILY]
    assert [(r.run_for, r.status, r.trigger) for r in daily] == [(today, "done", "cron")]


def test_the_app_catches_up_missed_days_when_it_starts(
    local_jobs: None, database_url: str, settings: Settings, tmp_path: Any
) -> None:
    from starlette.testclient import TestClient

    from app.main import create_app

    add_masters(database_url)
    cid = add_customer(database_url, "佐田 浩二", "サダ コウジ", "03-1111-2222")
    today = dt.datetime.now(JST).date()
    _done_run(database_url, SUBSCRIPTION_DAILY, today - dt.timedelta(days=4))
    sid = add_subscription(database_url, customer_id=cid, next_date=today - dt.timedelta(days=2))

    with TestClient(create_app(settings, var_dir=tmp_path / "var")):
        for _ in range(100):
            if orders_of(database_url, sid):
                break
            time.sleep(0.1)
    (order,) = orders_of(database_url, sid)
    assert order.subscription_due_on == today - dt.timedelta(days=2)
    days = [r.run_for for r in _runs(database_url) if r.trigger == "catch_up"]
    assert days[:3] == [today - dt.timedelta(days=n) for n in (3, 2, 1)]
