"""Shared pieces of the benchmarks: a bench database with demo data, percentiles, a server."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import text

from app.db import make_engine

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/yebisu_bench"


def pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": statistics.median(values) if values else float("nan"),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "max": max(values) if values else float("nan"),
    }


async def customer_count(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            demo = "SELECT count(*) FROM customers WHERE code NOT LIKE 'BENCH%'"
            return int(await conn.scalar(text(demo)) or 0)
    except Exception:
        return -1
    finally:
        await engine.dispose()


def prepare_database(url: str, customers: int, *, fresh: bool = False) -> None:
    """Make sure ``url`` holds a migrated database with ``customers`` demo customers."""
    from app.demo.service import generate
    from app.migrate import upgrade

    have = asyncio.run(customer_count(url)) if not fresh else -1
    if have == customers:
        print(f"database ready: {customers:,} customers")
        return
    base, _, name = url.rpartition("/")
    with psycopg.connect(pg_dsn(base + "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)
    print(f"generating {customers:,} demo customers …", flush=True)
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        print(f"\r  {done:,}/{total:,}", end="", flush=True)

    asyncio.run(generate(url, customers=customers, seed=1, progress=progress))
    print(f"\n  done in {time.perf_counter() - t0:.1f} s")
    with psycopg.connect(pg_dsn(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


class Server:
    """``yebisu serve`` in a subprocess on a free port."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.log = log
        full_env = {**os.environ, **env}
        full_env.pop("YEBISU_CONFIG", None)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app",
                    "serve",
                    "--no-migrate",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + log.read_text(errors="replace"))
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def login_cookie(url: str, login: str, password: str, extension: str = "") -> str:
    """Log in through the real form; returns the session cookie header value."""
    import re

    with httpx.Client(base_url=url) as c:
        page = c.get("/login").text
        m = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert m
        r = c.post(
            "/login",
            data={
                "login": login,
                "password": password,
                "csrf_token": m.group(1),
                "extension": extension,
            },
        )
        assert r.status_code in (200, 303), r.text
        return "; ".join(f"{k}={v}" for k, v in c.cookies.items())


def as_ms(values: list[float]) -> list[float]:
    return [v * 1000 for v in values]


def show(label: str, s: dict[str, Any]) -> None:
    print(
        f"{label:<34} n={s['n']:>6}  p50={s['p50']:7.2f} ms  p95={s['p95']:7.2f} ms  "
        f"p99={s['p99']:7.2f} ms  max={s['max']:7.2f} ms"
    )
