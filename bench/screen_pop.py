"""Screen-pop latency: caller-ID bytes in at the source → pop frame at the operator's websocket.

Run by hand (not in CI), on PostgreSQL and Redis:

    .venv/bin/python -m bench.screen_pop --customers 1000000 --operators 200 --calls 2000

It starts ``yebisu serve`` (real uvicorn, in-process bridge publishing through a Redis stream)
with a modem source on a pty, connects ``--operators`` logged-in websocket clients, then
injects calls at a steady rate two ways:

* ``pty``: Hayes caller-ID bytes written to the device side of the pty (modem line, whose
  ``--modem-operators`` operators all get the pop: the modem cannot tell the extension).
  ``--pty direct`` (the default) is one kernel pty pair: the bench writes the master side, the
  modem source reads the slave like a UART, nothing in between. ``--pty socat`` puts socat's
  relay process between two ptys, as the tests do (one more process to wake per call);
* ``parser``: Asterisk AMI bytes (Newchannel + DialBegin to one operator's extension) fed to the
  AMI parser in this process, its events published to the same Redis stream.

In the same run ``--supervisors`` supervisors (default 50) keep the live board open (its own
websocket, ``/board/ws?topic=board``): for each modem call, the time from the bytes going in
to the board update showing the ringing call at each supervisor is measured (the board is
rendered once per change, coalesced, and fanned out to every supervisor).

It also measures the floor: one indexed psycopg look-up + one render of the pop-up
template + one Redis publish→receive + one websocket send→receive. The last line printed is a
JSON object with p50_ms, p99_ms, max_ms, floor_p50_ms, ratio_p50 (and per-mode figures, and
board_p50_ms / board_p95_ms / board_p99_ms over every supervisor's update).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tty
import uuid
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aioredis
import serial
import websockets

from bench.common import (
    DEFAULT_URL,
    Server,
    as_ms,
    free_port,
    login_cookie,
    pg_dsn,
    prepare_database,
    show,
    summary,
)
from cti_bridge.bus import RedisBus
from cti_bridge.numbers import dialable, display_national
from cti_bridge.sources.ami import AmiCallTracker, AmiFramer

PASSWORD = "bench-password"
CALLER_RE = re.compile(r'class="pop-caller[^"]*">([^<]+)<')


async def ensure_operators(url: str, n: int, modem_ops: int) -> list[tuple[str, str, str]]:
    """Staff bench_op_NNN with extension 5NNN; the first ``modem_ops`` on line "modem"."""
    from sqlalchemy import select

    from app.auth.models import Staff
    from app.auth.service import create_staff
    from app.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(url)
    out = []
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            have = set((await s.scalars(select(Staff.login))).all())
            for i in range(n):
                login = f"bench_op_{i:03d}"
                ext = f"{5000 + i}"
                line = "modem" if i < modem_ops else "main"
                if login not in have:
                    await create_staff(
                        s,
                        login=login,
                        name=f"ベンチ {i:03d}",
                        password=PASSWORD,
                        extension=ext,
                        line=line,
                    )
                out.append((login, ext, line))
    finally:
        await engine.dispose()
    return out


def sample_numbers(url: str, n: int) -> list[str]:
    with psycopg.connect(pg_dsn(url)) as conn:
        total = conn.execute("SELECT count(*) FROM customer_phones").fetchone()
        pct = min(100.0, 400.0 * n / max(1, total[0] if total else 1))
        rows = conn.execute(
            f"SELECT DISTINCT e164 FROM customer_phones TABLESAMPLE SYSTEM ({pct:.4f}) LIMIT %s",
            (n * 2,),
        ).fetchall()
    numbers = [r[0] for r in rows]
    random.Random(7).shuffle(numbers)
    if len(numbers) < n:
        raise SystemExit(f"only {len(numbers)} phone numbers sampled; need {n}")
    return numbers[:n]


class Clients:
    """Operators' websocket clients recording when each pop frame arrives."""

    def __init__(self) -> None:
        self.pending: dict[str, float] = {}  # caller display → time the bytes went in
        self.latencies: list[float] = []
        self.frames = 0
        self.conns: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def connect(self, ws_url: str, cookie: str) -> None:
        conn = await websockets.connect(
            ws_url, additional_headers={"Cookie": cookie}, max_size=2**22
        )
        self.conns.append(conn)
        self.tasks.append(asyncio.create_task(self._recv(conn)))

    async def _recv(self, conn: Any) -> None:
        try:
            async for frame in conn:
                now = time.perf_counter()
                if 'hx-swap-oob="afterbegin"' not in frame:
                    continue
                m = CALLER_RE.search(frame)
                if m is None:
                    continue
                t0 = self.pending.get(m.group(1))
                if t0 is not None:
                    self.latencies.append(now - t0)
                    self.frames += 1
        except websockets.ConnectionClosed:
            return

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for c in self.conns:
            await c.close()


BOARD_CALLER_RE = re.compile(r'<li class="ringing">.*?<strong>([^<]+)</strong>', re.S)


class BoardClients:
    """Supervisors' board websockets: when each ringing call first shows on each board."""

    def __init__(self, pending: dict[str, float]) -> None:
        self.pending = pending  # shared with the operators' clients
        self.latencies: list[float] = []
        self.frames = 0
        self.conns: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def connect(self, ws_url: str, cookie: str) -> None:
        conn = await websockets.connect(
            ws_url, additional_headers={"Cookie": cookie}, max_size=2**22
        )
        self.conns.append(conn)
        self.tasks.append(asyncio.create_task(self._recv(conn)))

    async def _recv(self, conn: Any) -> None:
        seen: set[str] = set()
        try:
            async for frame in conn:
                now = time.perf_counter()
                self.frames += 1
                for caller in BOARD_CALLER_RE.findall(frame):
                    t0 = self.pending.get(caller)
                    if t0 is not None and caller not in seen:
                        seen.add(caller)
                        self.latencies.append(now - t0)
        except websockets.ConnectionClosed:
            return

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for c in self.conns:
            await c.close()


async def ensure_supervisors(url: str, n: int) -> list[str]:
    from sqlalchemy import select

    from app.auth.models import Staff
    from app.auth.service import create_staff
    from app.db import make_engine, make_sessionmaker, transaction

    engine = make_engine(url)
    out = []
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            have = set((await s.scalars(select(Staff.login))).all())
            for i in range(n):
                login = f"bench_sv_{i:03d}"
                if login not in have:
                    await create_staff(
                        s,
                        login=login,
                        name=f"リーダー {i:03d}",
                        password=PASSWORD,
                        role="supervisor",
                    )
                out.append(login)
    finally:
        await engine.dispose()
    return out


RUN = int(time.time())
device_slave_fds: list[int] = []


def ami_bytes(seq: int, number: str, extension: str) -> bytes:
    uid = f"{RUN}.{seq}"
    chan = f"PJSIP/trunk-{seq:08x}"
    common = (
        f"Channel: {chan}\r\nChannelState: 4\r\nChannelStateDesc: Ring\r\n"
        f"CallerIDNum: {number}\r\nCallerIDName: <unknown>\r\nContext: from-trunk\r\n"
        f"Exten: 0501234567\r\nPriority: 1\r\nUniqueid: {uid}\r\nLinkedid: {uid}\r\n"
    )
    return (
        f"Event: Newchannel\r\nPrivilege: call,all\r\n{common}\r\n"
        f"Event: DialBegin\r\nPrivilege: call,all\r\n{common}"
        f"DestChannel: PJSIP/{extension}-{seq:08x}\r\nDestChannelState: 0\r\n"
        f"DestCallerIDNum: {extension}\r\nDestUniqueid: {RUN + 1}.{seq}\r\n"
        f"DestLinkedid: {uid}\r\nDialString: {extension}\r\n\r\n"
    ).encode()


async def floor(
    url: str, redis_url: str, numbers: list[str], n: int, interval: float
) -> list[float]:
    """Indexed look-up + pop render + Redis hop + websocket send, one sample per ``interval``
    (the calls' cadence: an idle machine wakes up slower than a busy loop)."""
    from app.calls.models import Call
    from app.calls.service import _pop_context
    from app.db import make_engine, make_sessionmaker
    from app.web import templates

    engine = make_engine(url)
    async with make_sessionmaker(engine)() as session:
        sample = Call(
            id=1,
            source="bench",
            source_call_id="x",
            line="main",
            extension="5000",
            caller_raw=numbers[0],
            caller_e164=numbers[0],
            state="ringing",
            started_at=__import__("app.db", fromlist=["utcnow"]).utcnow(),
            targets=[],
        )
        ctx = await _pop_context(session, sample)
    await engine.dispose()
    template = templates.env.get_template("calls/_pop.html")

    received: asyncio.Queue[float] = asyncio.Queue()

    async def handler(ws: Any) -> None:
        async for _msg in ws:
            pass

    server = await websockets.serve(handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    client = await websockets.connect(f"ws://127.0.0.1:{port}", max_size=2**22)
    server_conn: Any = None
    for c in server.connections:
        server_conn = c

    async def reader() -> None:
        async for _frame in client:
            received.put_nowait(time.perf_counter())

    rtask = asyncio.create_task(reader())
    r = aioredis.from_url(redis_url)
    pubsub = r.pubsub()
    channel = f"bench-floor-{uuid.uuid4().hex[:6]}"
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1)
    out = []
    async with await psycopg.AsyncConnection.connect(pg_dsn(url)) as conn:
        for i in range(n):
            number = numbers[i % len(numbers)]
            t0 = time.perf_counter()
            cur = await conn.execute(
                "SELECT DISTINCT customer_id FROM customer_phones WHERE e164 = %s LIMIT 20",
                (number,),
            )
            await cur.fetchall()
            html = template.render(**ctx, insert=True)
            await r.publish(channel, html)
            while (await pubsub.get_message(timeout=1)) is None:
                pass
            await server_conn.send(html)
            await received.get()
            out.append(time.perf_counter() - t0)
            await asyncio.sleep(interval)
    rtask.cancel()
    await client.close()
    server.close()
    await pubsub.aclose()
    await r.aclose()
    return out


class Device:
    """The modem's side of the pty: a kernel pty master, or socat's other pty."""

    def __init__(self, master_fd: int | None, peer: Path | None) -> None:
        self.fd = master_fd
        self.serial = serial.Serial(str(peer), timeout=0) if peer is not None else None

    def write(self, data: bytes) -> None:
        if self.serial is not None:
            self.serial.write(data)
        else:
            assert self.fd is not None
            os.write(self.fd, data)

    def close(self) -> None:
        if self.serial is not None:
            self.serial.close()


async def run(
    args: argparse.Namespace, server: Server, device: Device, prefix: str
) -> dict[str, Any]:
    operators = await ensure_operators(args.database_url, args.operators, args.modem_operators)
    numbers = sample_numbers(args.database_url, 2 * (args.calls + args.warmup) + 10)
    port = server.port
    supervisors = await ensure_supervisors(args.database_url, args.supervisors)
    clients = Clients()
    boards = BoardClients(clients.pending)
    try:
        print(f"logging in {len(operators)} operators …", flush=True)
        loop = asyncio.get_running_loop()
        cookies = await asyncio.gather(
            *(
                loop.run_in_executor(None, login_cookie, server.url, login, PASSWORD, ext)
                for login, ext, _line in operators
            )
        )
        for cookie in cookies:
            await clients.connect(f"ws://127.0.0.1:{port}/ws", cookie)
        print(f"opening {len(supervisors)} supervisors' boards …", flush=True)
        sv_cookies = await asyncio.gather(
            *(
                loop.run_in_executor(None, login_cookie, server.url, login, PASSWORD, "")
                for login in supervisors
            )
        )
        for cookie in sv_cookies:
            await boards.connect(f"ws://127.0.0.1:{port}/board/ws?topic=board", cookie)
        await asyncio.sleep(1.0)
        interval = 1.0 / args.rate
        results: dict[str, list[float]] = {}

        # 1. bytes into the serial pty (modem line: every operator of that line gets it)
        clients.latencies = []
        for i in range(args.warmup + args.calls):
            number = numbers[i]
            if i == args.warmup:
                clients.latencies = []
                boards.latencies = []
            clients.pending[display_national(number)] = time.perf_counter()
            device.write(
                f"DATE = 1123\r\nTIME = 1405\r\nNMBR = {dialable(number)}\r\n\r\nRING\r\n".encode()
            )
            await asyncio.sleep(1.0 / args.pty_rate)
        await asyncio.sleep(1.0)
        results["pty"] = list(clients.latencies)
        results["board"] = list(boards.latencies)

        # 2. AMI bytes at the parser boundary → Redis stream → app (one operator's extension)
        bus = RedisBus(args.redis_url, prefix=prefix)
        framer = AmiFramer()
        tracker = AmiCallTracker("asterisk", "main")
        main_ops = [ext for _l, ext, line in operators if line == "main"] or ["5000"]
        rng = random.Random(3)
        clients.latencies = []
        base = args.warmup + args.calls
        for i in range(args.warmup + args.calls):
            number = numbers[base + i]
            if i == args.warmup:
                clients.latencies = []
            ext = rng.choice(main_ops)
            t0 = time.perf_counter()
            clients.pending[display_national(number)] = t0
            messages, _rest = framer.feed(ami_bytes(i + 1, dialable(number), ext))
            for msg in messages:
                for event in tracker.handle(msg):
                    await bus.publish(event)
            await asyncio.sleep(interval)
        await asyncio.sleep(1.0)
        results["parser"] = list(clients.latencies)
        await bus.close()

        print("measuring the floor …", flush=True)
        results["floor"] = await floor(
            args.database_url, args.redis_url, numbers, args.calls, interval
        )
    finally:
        await clients.close()
        await boards.close()
        device.close()
    return results


def start_pty_and_server(
    args: argparse.Namespace, workdir: Path
) -> tuple[subprocess.Popen[bytes] | None, Server, Device, str]:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    socat_proc: subprocess.Popen[bytes] | None = None
    if args.pty == "socat":
        socat = shutil.which("socat")
        if socat is None:
            raise SystemExit("socat is needed (apt-get install socat)")
        dev, peer = workdir / "ttyBRIDGE", workdir / "ttyDEVICE"
        socat_proc = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={dev}", f"pty,raw,echo=0,link={peer}"],
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if dev.exists() and peer.exists():
                break
            time.sleep(0.05)
        device = Device(None, peer)
        port_name = str(dev)
    else:
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        port_name = os.ttyname(slave)
        device = Device(master, None)
        # The slave stays open here too, so the pty never hangs up between the source's opens.
        device_slave_fds.append(slave)
    sources = [
        {
            "kind": "modem",
            "name": "modem",
            "port": port_name,
            "line": "modem",
            "init": [],
            # Each bench call stops ringing well before the next (a real line's previous call
            # ended long before the next rings), so a pop never waits behind an end.
            "ring_end_s": 0.3,
        }
    ]
    port = free_port()
    server = Server(
        {
            "YEBISU_DATABASE_URL": args.database_url,
            "YEBISU_REDIS_URL": args.redis_url,
            "YEBISU_REDIS_CHANNEL_PREFIX": prefix,
            "YEBISU_SERVER_SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "YEBISU_SERVER_LOG_LEVEL": "warning",
            "YEBISU_CTI_SOURCES": json.dumps(sources),
            "YEBISU_DATABASE_POOL_SIZE": "10",
        },
        port,
        workdir / "server.log",
    )
    return socat_proc, server, device, prefix


def database_memory(url: str, *, prewarm: bool) -> dict[str, Any]:
    """Whether PostgreSQL's buffers can hold the database (else many look-ups read the disk:
    a machine's page cache may be reclaimed within minutes); ``prewarm`` loads every table and
    index into them first (``pg_prewarm``)."""
    with psycopg.connect(pg_dsn(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('shared_buffers'), "
            "pg_size_bytes(current_setting('shared_buffers')), "
            "pg_database_size(current_database())"
        ).fetchone()
        assert row is not None
        shown, buffers, size = row
        print(f"shared_buffers {shown}, database {size / 2**30:.2f} GiB", flush=True)
        if buffers < size:
            print("  the database does not fit: look-ups may read the disk", flush=True)
        warmed = False
        if prewarm:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            t0 = time.perf_counter()
            conn.execute(
                "SELECT sum(pg_prewarm(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')"
            )
            print(f"  prewarmed in {time.perf_counter() - t0:.1f} s", flush=True)
            warmed = True
    return {"shared_buffers": shown, "database_bytes": size, "prewarmed": warmed}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--operators", type=int, default=200)
    p.add_argument(
        "--modem-operators",
        type=int,
        default=4,
        help="operators on the modem's line (each modem call pops for all of them)",
    )
    p.add_argument("--calls", type=int, default=1000, help="calls per injection mode")
    p.add_argument(
        "--rate", type=float, default=10.0, help="AMI calls (and floor samples) per second"
    )
    p.add_argument(
        "--pty-rate",
        type=float,
        default=2.0,
        help="modem calls per second (each stops ringing before the next)",
    )
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument(
        "--pty",
        choices=("direct", "socat"),
        default="direct",
        help="one kernel pty pair, or socat relaying between two ptys (as in the tests)",
    )
    p.add_argument(
        "--supervisors", type=int, default=50, help="supervisors with the live board open"
    )
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument(
        "--prewarm",
        action="store_true",
        help="load the database into PostgreSQL's buffers first (pg_prewarm)",
    )
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--fresh", action="store_true", help="regenerate the demo data")
    args = p.parse_args()
    if not args.database_url.startswith("postgresql+psycopg://"):
        raise SystemExit("--database-url must be postgresql+psycopg://…")
    prepare_database(args.database_url, args.customers, fresh=args.fresh)
    memory = database_memory(args.database_url, prewarm=args.prewarm)
    with tempfile.TemporaryDirectory() as tmp:
        socat_proc, server, device, prefix = start_pty_and_server(args, Path(tmp))
        try:
            results = asyncio.run(run(args, server, device, prefix))
        finally:
            server.stop()
            if socat_proc is not None:
                socat_proc.terminate()
    pty, parser, fl = (summary(as_ms(results[k])) for k in ("pty", "parser", "floor"))
    both = summary(as_ms(results["pty"] + results["parser"]))
    print()
    show("pty bytes → pop frame", pty)
    show("AMI parser → pop frame", parser)
    show("all", both)
    show("floor (lookup+render+redis+ws)", fl)
    board = summary(as_ms(results["board"]))
    show(f"modem bytes → board ({args.supervisors} supervisors)", board)
    ratio = both["p50"] / fl["p50"] if fl["p50"] else float("nan")
    print(f"ratio p50 / floor p50 = {ratio:.2f}")
    print(
        json.dumps(
            {
                "p50_ms": round(both["p50"], 3),
                "p99_ms": round(both["p99"], 3),
                "max_ms": round(both["max"], 3),
                "floor_p50_ms": round(fl["p50"], 3),
                "floor_p99_ms": round(fl["p99"], 3),
                "ratio_p50": round(ratio, 2),
                "pty": args.pty,
                "pty_p50_ms": round(pty["p50"], 3),
                "pty_p99_ms": round(pty["p99"], 3),
                "parser_p50_ms": round(parser["p50"], 3),
                "parser_p99_ms": round(parser["p99"], 3),
                "frames": both["n"],
                "customers": args.customers,
                "operators": args.operators,
                "supervisors": args.supervisors,
                **memory,
                "board_p50_ms": round(board["p50"], 3),
                "board_p95_ms": round(board["p95"], 3),
                "board_p99_ms": round(board["p99"], 3),
                "board_updates": board["n"],
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
