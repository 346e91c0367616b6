"""Shared fixtures: databases on both backends, settings, app clients, a live server, Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings, load_settings

pytest_plugins = ["tests.devices"]

ROOT = Path(__file__).resolve().parent.parent
BACKEND = os.environ.get("YEBISU_TEST_BACKEND", "sqlite")
IN_CI = os.environ.get("CI") == "true"
ARTIFACTS = ROOT / "test-artifacts"


def need(available: bool, what: str) -> None:
    """A missing tool or service fails the test in CI and skips it elsewhere."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is missing")
    pytest.skip(f"{what} is missing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- databases ------------------------------------------------------------------------------


def _pg_base() -> str:
    url = os.environ.get("YEBISU_TEST_DATABASE_URL", "")
    need(bool(url), "PostgreSQL (YEBISU_TEST_DATABASE_URL)")
    return url


def _pg_admin(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def _with_db(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def db_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database to copy for each test."""
    from app.migrate import upgrade

    if BACKEND == "postgres":
        base = _pg_base()
        name = f"yebisu_tpl_{os.getpid()}"
        with _pg_admin(base) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = _with_db(base, name)
        upgrade(url)
        yield url
        with _pg_admin(base) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path_factory.mktemp("tpl") / "template.db"
        upgrade(f"sqlite+aiosqlite:///{path}")
        yield str(path)


@pytest.fixture
def database_url(db_template: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for this test (SQLite file or PostgreSQL database)."""
    if BACKEND == "postgres":
        base = _pg_base()
        name = f"yebisu_t_{uuid.uuid4().hex[:12]}"
        tpl = db_template.rpartition("/")[2]
        with _pg_admin(base) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{tpl}"')
        yield _with_db(base, name)
        with _pg_admin(base) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path / "yebisu.db"
        shutil.copy(db_template, path)
        yield f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def redis_url() -> str:
    """The test Redis (only on the PostgreSQL + Redis run); empty on the embedded run."""
    if BACKEND != "postgres":
        return ""
    url = os.environ.get("YEBISU_TEST_REDIS_URL", "")
    need(bool(url), "Redis (YEBISU_TEST_REDIS_URL)")
    return url


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    s = load_settings(
        environ={
            "YEBISU_DATABASE_URL": database_url,
            "YEBISU_SERVER_SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
            "YEBISU_REDIS_URL": redis_url,
            "YEBISU_REDIS_CHANNEL_PREFIX": "yt" + uuid.uuid4().hex[:8],
        },
        path=None,
    )
    return s


def run_async(coro: Any) -> Any:
    """Run a coroutine to completion from sync test code (also under Playwright's loop)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _add_staff(url: str, **kw: Any) -> int:
    from app.auth.service import create_staff
    from app.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            staff = await create_staff(session, **kw)
            return staff.id
    finally:
        await engine.dispose()


@pytest.fixture
def make_staff(database_url: str) -> Callable[..., int]:
    """Create a staff member: make_staff(login, role='operator', password='password123')."""

    def make(login: str, role: str = "operator", password: str = "password123", **kw: Any) -> int:
        return int(
            run_async(
                _add_staff(
                    database_url,
                    login=login,
                    name=kw.pop("name", login),
                    password=password,
                    role=role,
                    **kw,
                )
            )
        )

    return make


# --- in-process client ----------------------------------------------------------------------


@pytest.fixture
def client(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from app.main import create_app

    app = create_app(settings, var_dir=tmp_path / "var")
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def csrf_of(client: Any) -> str:
    """Fetch the log-in page and return the CSRF token of this client's session."""
    import re

    html = client.get("/login").text
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf token on the log-in page"
    return m.group(1)


def login(client: Any, login_id: str, password: str = "password123", **extra: str) -> Any:
    token = csrf_of(client)
    return client.post(
        "/login",
        data={"login": login_id, "password": password, "csrf_token": token, **extra},
        follow_redirects=False,
    )


# --- live server + browser ------------------------------------------------------------------


class LiveServer:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.proc = proc
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def live_server_factory(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start ``yebisu serve`` in a subprocess on a free loopback port."""
    started: list[LiveServer] = []

    def start(extra_env: dict[str, str] | None = None) -> LiveServer:
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        env = {
            **os.environ,
            "YEBISU_DATABASE_URL": settings.database.url,
            "YEBISU_SERVER_SECRET_KEY": settings.server.secret_key,
            "YEBISU_REDIS_URL": settings.redis.url,
            "YEBISU_REDIS_CHANNEL_PREFIX": settings.redis.channel_prefix,
            "YEBISU_SERVER_LOG_LEVEL": "warning",
            **(extra_env or {}),
        }
        env.pop("YEBISU_CONFIG", None)
        with log.open("wb") as out:
            proc = subprocess.Popen(
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
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("server exited:\n" + log.read_text(errors="replace"))
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            proc.kill()
            raise RuntimeError("server did not start:\n" + log.read_text(errors="replace"))
        server = LiveServer(url, proc, log)
        started.append(server)
        return server

    yield start
    for s in started:
        s.proc.terminate()
        try:
            s.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            s.proc.kill()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    need(Path(CHROMIUM).exists(), "Chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def new_page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    """Open pages in fresh browser contexts; a failed test saves a screenshot of each."""
    contexts: list[Any] = []
    pages: list[Any] = []

    def make() -> Any:
        ctx = browser.new_context(
            locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1366, "height": 800}
        )
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        page = ctx.new_page()
        pages.append(page)
        return page

    yield make
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for i, page in enumerate(pages):
            name = f"{request.node.name}-{BACKEND}-{i}.png".replace("/", "_")
            try:
                page.screenshot(path=str(ARTIFACTS / name), full_page=True)
            except Exception as exc:  # the page may be gone already
                print(f"screenshot failed: {exc}")
    for ctx in contexts:
        ctx.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API keeps an event loop running in the main
    thread for as long as the (session-wide) browser lives, which async tests cannot share."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
