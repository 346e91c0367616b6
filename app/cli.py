"""The ``yebisu`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from app.config import ConfigError, Settings, load_settings

log = logging.getLogger("yebisu")

DEMO_LOGINS_HINT = "demo log-ins"


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(getattr(args, "config", None))
    if getattr(args, "database_url", None):
        settings.database.url = args.database_url
    return settings


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- db -------------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from app.migrate import upgrade

    settings = _settings(args)
    upgrade(settings.database.url, args.revision)
    print(f"database at revision {args.revision}: {_redact(settings.database.url)}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from app.migrate import downgrade

    settings = _settings(args)
    downgrade(settings.database.url, args.revision)
    print(f"database downgraded to {args.revision}")
    return 0


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


# --- users ----------------------------------------------------------------------------------


async def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> None:
    from app.auth.service import create_staff
    from app.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(settings.database.url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            await create_staff(
                session,
                login=args.login,
                name=args.name or args.login,
                password=password,
                role=args.role,
                extension=args.extension or "",
                line=args.line,
            )
    finally:
        await engine.dispose()


def cmd_users_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    password = args.password or os.environ.get("YEBISU_NEW_PASSWORD", "")
    if not password:
        if not sys.stdin.isatty():
            print(
                "error: give --password or YEBISU_NEW_PASSWORD (no terminal to ask)",
                file=sys.stderr,
            )
            return 2
        password = getpass.getpass("password: ")
        if password != getpass.getpass("again: "):
            print("error: the passwords differ", file=sys.stderr)
            return 2
    try:
        _run(_create_user(settings, args, password))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created {args.role} {args.login}")
    return 0


# --- demo data ------------------------------------------------------------------------------


async def _load_demo(settings: Settings, customers: int, seed: int, quiet: bool = False) -> Any:
    from app.db import make_engine, make_sessionmaker, transaction
    from app.demo import service as demo

    engine = make_engine(settings.database.url)
    try:
        async with transaction(make_sessionmaker(engine)) as session:
            users = await demo.load_demo_users(session)

        def progress(done: int, total: int) -> None:
            if not quiet:
                print(f"\r  customers {done:,}/{total:,}", end="", flush=True)

        counts = await demo.generate(engine, customers=customers, seed=seed, progress=progress)
        if not quiet:
            print()
        return users, counts
    finally:
        await engine.dispose()


def cmd_demo_data(args: argparse.Namespace) -> int:
    from app.migrate import upgrade

    settings = _settings(args)
    upgrade(settings.database.url)
    from app.demo.service import DemoDataError

    try:
        users, counts = _run(_load_demo(settings, args.customers, args.seed))
    except DemoDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for table, n in counts.items():
        print(f"  {table:<20} {n:>12,}")
    _print_logins(users)
    return 0


def _print_logins(users: Sequence[tuple[str, str, str]]) -> None:
    print(f"{DEMO_LOGINS_HINT}:")
    for login, password, role in users:
        print(f"  {role:<11} {login} / {password}")


async def _is_empty(settings: Settings) -> bool:
    from sqlalchemy import func, select

    from app.auth.models import Staff
    from app.db import make_engine

    engine = make_engine(settings.database.url)
    try:
        async with engine.connect() as conn:
            return bool((await conn.scalar(select(func.count()).select_from(Staff))) == 0)
    finally:
        await engine.dispose()


# --- serve ----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app
    from app.migrate import upgrade

    settings = _settings(args)
    if args.host:
        settings.server.host = args.host
    if args.port:
        settings.server.port = args.port
    if args.demo:
        settings.demo.load_on_first_start = True
    if not args.no_migrate:
        upgrade(settings.database.url)
    users: Sequence[tuple[str, str, str]] = []
    if settings.demo.load_on_first_start and _run(_is_empty(settings)):
        print(f"loading demo data ({settings.demo.customers} customers) …")
        users, _counts = _run(_load_demo(settings, settings.demo.customers, settings.demo.seed))
    elif settings.demo.load_on_first_start:
        from app.demo.service import DEMO_USERS

        users = [(u[0], u[1], u[2]) for u in DEMO_USERS]
    app = create_app(settings, freeze_gc=True)
    url = f"http://{settings.server.host}:{settings.server.port}/"
    print(f"YEBISU is running at {url}")
    if users:
        _print_logins(users)
    uvicorn.run(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.server.log_level.lower(),
        ws="websockets-sansio",
        proxy_headers=False,
    )
    return 0


# --- bridge / worker / simulate-call --------------------------------------------------------


def cmd_bridge(args: argparse.Namespace) -> int:
    from app.cti_runtime import run_bridge_process

    settings = _settings(args)
    if not settings.redis.url:
        print(
            "error: redis.url: `yebisu bridge` runs as its own process and publishes "
            "through Redis; set [redis] url",
            file=sys.stderr,
        )
        return 2
    with contextlib.suppress(asyncio.CancelledError):  # SIGTERM / SIGINT: a clean stop
        _run(run_bridge_process(settings))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not settings.redis.url:
        print(
            "error: redis.url: the arq worker needs Redis; without it jobs run in-process "
            "inside `yebisu serve`",
            file=sys.stderr,
        )
        return 2
    from jobs.worker import run_worker

    return run_worker(settings)


def cmd_simulate_call(args: argparse.Namespace) -> int:
    from app.cti_runtime import simulate_call

    settings = _settings(args)
    try:
        result = simulate_call(
            settings,
            number=args.number,
            extension=args.ext,
            line=args.line,
            url=args.url,
            action=args.action,
            call_id=args.call_id,
        )
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result)
    return 0


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="yebisu", description="YEBISU: CTI customer monitor for mail-order call centres."
    )
    p.add_argument("--config", help="TOML config file (default: $YEBISU_CONFIG or ./config.toml)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_: str, parent: Any = sub
    ) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = parent.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    s = add("serve", cmd_serve, "run the web application (and the in-process bridge and jobs)")
    s.add_argument("--host", help="listen address (default from [server] host)")
    s.add_argument("--port", type=int, help="listen port (default from [server] port)")
    s.add_argument("--demo", action="store_true", help="load demo data on first start")
    s.add_argument("--no-migrate", action="store_true", help="do not migrate the database first")

    add("bridge", cmd_bridge, "run the CTI bridge as its own process, publishing through Redis")
    add("worker", cmd_worker, "run the arq background-job worker (needs Redis)")

    dbp = sub.add_parser("db", help="database migrations", description="database migrations")
    dbsub = dbp.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = add("upgrade", cmd_db_upgrade, "migrate the database to the newest revision", dbsub)
    up.add_argument("--revision", default="head", help="target revision (default: head)")
    up.add_argument("--database-url", help="override [database] url")
    down = add("downgrade", cmd_db_downgrade, "migrate the database down to REVISION", dbsub)
    down.add_argument("revision", help="target revision, e.g. base")
    down.add_argument("--database-url", help="override [database] url")

    d = add("demo-data", cmd_demo_data, "create realistic demo customers, orders and staff")
    d.add_argument("--customers", type=int, default=300, help="number of customers (default 300)")
    d.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")
    d.add_argument("--database-url", help="override [database] url")

    up_ = sub.add_parser("users", help="staff log-ins", description="staff log-ins")
    usub = up_.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    uc = add("create", cmd_users_create, "create a staff log-in", usub)
    uc.add_argument("--login", required=True, help="log-in id")
    uc.add_argument("--name", help="display name (default: the log-in id)")
    uc.add_argument(
        "--role", default="operator", choices=["operator", "supervisor", "backoffice", "admin"]
    )
    uc.add_argument("--extension", help="default telephone extension")
    uc.add_argument("--line", default="main", help="line / team (default: main)")
    uc.add_argument("--password", help="password (else $YEBISU_NEW_PASSWORD or a prompt)")
    uc.add_argument("--database-url", help="override [database] url")

    sc = add(
        "simulate-call",
        cmd_simulate_call,
        "ring the running server's simulator with a caller number",
    )
    sc.add_argument(
        "number",
        help="caller number as the network sends it, e.g. 0952326611, "
        "P (非通知), O (表示圏外), C (公衆電話)",
    )
    sc.add_argument("--ext", help="the extension that rings (default: every available operator)")
    sc.add_argument("--line", help="line name (default: the simulator's line)")
    sc.add_argument(
        "--action",
        default="ring",
        choices=["ring", "answer", "hangup"],
        help="ring (default), or answer / hang up a call by --call-id",
    )
    sc.add_argument("--call-id", help="call id for answer / hangup")
    sc.add_argument("--url", help="server URL (default from [server] host and port)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
