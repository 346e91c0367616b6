"""The `yebisu` command as an administrator uses it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.config import Settings
from tests.conftest import need


def yebisu(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {})}
    full.pop("YEBISU_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=timeout,
    )


def test_help_lists_every_command() -> None:
    out = yebisu("--help").stdout
    for command in ("serve", "bridge", "worker", "db", "demo-data", "users", "simulate-call"):
        assert command in out
    assert "--customers" in yebisu("demo-data", "--help").stdout
    assert "--ext" in yebisu("simulate-call", "--help").stdout


def test_users_create_and_its_errors(settings: Settings, tmp_path: Path) -> None:
    env = {"YEBISU_DATABASE_URL": settings.database.url}
    ok = yebisu(
        "users",
        "create",
        "--login",
        "sato",
        "--name",
        "佐藤 一郎",
        "--role",
        "supervisor",
        "--password",
        "secret-pass",
        env=env,
        cwd=tmp_path,
    )
    assert ok.returncode == 0 and "created supervisor sato" in ok.stdout
    again = yebisu(
        "users", "create", "--login", "sato", "--password", "secret-pass", env=env, cwd=tmp_path
    )
    assert again.returncode == 2 and "ログインID sato は既に使われています" in again.stderr
    short = yebisu("users", "create", "--login", "x", "--password", "short", env=env, cwd=tmp_path)
    assert short.returncode == 2 and "8文字以上" in short.stderr
    bad_role = yebisu("users", "create", "--login", "y", "--role", "boss", env=env, cwd=tmp_path)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr


def test_demo_data_prints_counts_and_logins_and_refuses_twice(
    settings: Settings, tmp_path: Path
) -> None:
    env = {"YEBISU_DATABASE_URL": settings.database.url}
    first = yebisu("demo-data", "--customers", "30", "--seed", "3", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "customers" in first.stdout and "operator / operator123" in first.stdout
    second = yebisu("demo-data", "--customers", "30", env=env, cwd=tmp_path)
    assert second.returncode == 2 and "顧客データが既にあります" in second.stderr


def test_simulate_call_says_when_no_server_answers(tmp_path: Path) -> None:
    r = yebisu("simulate-call", "0312345678", "--url", "http://127.0.0.1:9", cwd=tmp_path)
    assert r.returncode == 1 and "error:" in r.stderr


def test_bridge_and_worker_need_redis(tmp_path: Path) -> None:
    env = {"YEBISU_REDIS_URL": ""}
    for command in ("bridge", "worker"):
        r = yebisu(command, env=env, cwd=tmp_path)
        assert r.returncode == 2 and "redis.url" in r.stderr


@pytest.mark.redis
def test_worker_runs_jobs_from_redis(settings: Settings, tmp_path: Path) -> None:
    url = os.environ.get("YEBISU_TEST_REDIS_URL", "")
    need(bool(url), "Redis (YEBISU_TEST_REDIS_URL)")
    prefix = "wk" + uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "YEBISU_REDIS_URL": url,
        "YEBISU_REDIS_CHANNEL_PREFIX": prefix,
        "YEBISU_DATABASE_URL": settings.database.url,
    }
    env.pop("YEBISU_CONFIG", None)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "app", "worker"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        async def run_job() -> object:
            from arq import create_pool
            from arq.connections import RedisSettings

            pool = await create_pool(RedisSettings.from_dsn(url))
            try:
                job = await pool.enqueue_job("ping", _queue_name=f"{prefix}:arq:queue")
                assert job is not None
                return await job.result(timeout=30)
            finally:
                await pool.aclose()

        assert asyncio.run(run_job()) == "pong"
    finally:
        worker.terminate()
        worker.wait(10)
