"""The app's side of the CTI bridge: consume call events, push pops, webhook and simulator.

Events come from a bus: in-process (embedded default) or a Redis stream (several app
processes and/or ``yebisu bridge``). Each event is applied in one transaction, and its
fragments are pushed after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import urllib.request
from collections import OrderedDict

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.board.notify import BoardNotifier
from app.calls.service import Delivery, expire_ringing, handle_event, ring_lookup_for
from app.config import Settings, resolve_secret_key
from app.db import transaction
from app.hub import Hub
from cti_bridge.bus import Bus, MemoryBus, RedisBus
from cti_bridge.config import WebhookSourceConfig
from cti_bridge.events import CallEnded, CallEvent, CallRinging
from cti_bridge.runner import Bridge, build_sources
from cti_bridge.runner import main as bridge_main
from cti_bridge.source import DialError
from cti_bridge.sources.simulator import SimulatorSource
from cti_bridge.sources.webhook import (
    TIMESTAMP_HEADER,
    WebhookAuthError,
    WebhookError,
    WebhookStaleError,
    check_signature,
    parse_webhook,
)

log = logging.getLogger("yebisu.cti")

# An event's transaction commits without waiting for the WAL flush (``cti.async_commit``).
ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")
SIGNATURE_HEADER = "X-Yebisu-Signature"
WEBHOOK_MAX_BYTES = 64 * 1024


class CtiRuntime:
    """Runs the in-process bridge (if configured), the event consumer and the ring timer."""

    def __init__(
        self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], hub: Hub
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.hub = hub
        # Events of this process's own sources (in-process bridge, webhook, simulator) are
        # handled here, straight from memory. With Redis, events of `yebisu bridge` processes
        # come through the Redis stream, each handled by one app process.
        self.bus: Bus = MemoryBus()
        self.remote: RedisBus | None = (
            RedisBus(settings.redis.url, prefix=settings.redis.channel_prefix)
            if settings.redis.url
            else None
        )
        self.replays = ReplayGuard(
            self.remote.redis if self.remote is not None else None,
            prefix=settings.redis.channel_prefix,
        )
        self.bridge: Bridge | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._rung: OrderedDict[tuple[str, str], None] = OrderedDict()
        # The supervisors' live board: refreshed after each event, off the pop path.
        self.board = BoardNotifier(settings, sessionmaker, hub)
        self.lookup = ring_lookup_for(settings.database.url)
        self._async_commit = settings.cti.async_commit and self.lookup is not None

    async def start(self) -> None:
        stale = float(self.settings.cti.ring_timeout_s)
        if self.lookup is not None:
            await self.lookup.start()
        if self.settings.cti.in_process:
            self.bridge = Bridge(build_sources(self.settings.cti.sources), self.bus)
            await self.bridge.start()
        self._tasks.append(
            asyncio.create_task(self.bus.consume(self.handle, drop_stale_after_s=stale))
        )
        if self.remote is not None:
            await self.remote.ensure_group()
            self._tasks.append(
                asyncio.create_task(self.remote.consume(self.handle, drop_stale_after_s=stale))
            )
        self._tasks.append(asyncio.create_task(self._expire_loop(), name="cti-expiry"))
        self.board.start()

    async def stop(self) -> None:
        await self.board.stop()
        if self.bridge is not None:
            await self.bridge.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.bus.close()
        if self.remote is not None:
            await self.remote.close()
        if self.lookup is not None:
            await self.lookup.stop()

    async def publish(self, event: CallEvent) -> None:
        await self.bus.publish(event)

    def simulator(self) -> SimulatorSource | None:
        return self.bridge.simulator() if self.bridge is not None else None

    async def handle(self, event: CallEvent) -> None:
        """Apply one event in one transaction; its fragments are pushed just before the commit
        (the pop is what the operator waits for; a failed commit is logged and raised)."""
        early = isinstance(event, CallRinging) and self._first_ring(event)
        async with transaction(self.sessionmaker) as session:
            deliveries = await handle_event(
                session, event=event, push=self._deliver if early else None, lookup=self.lookup
            )
            await self._deliver(deliveries)
            if self._async_commit and session.in_transaction():
                await session.execute(ASYNC_COMMIT)
        # An inbound call that ends leaves a response to complete: 本日の対応 lists it.
        self.board.poke("response" if isinstance(event, CallEnded) else "call")

    def can_dial(self) -> bool:
        """Whether click-to-dial can go through a PBX or modem (else the page offers a
        ``tel:`` link)."""
        if self.bridge is not None:
            return any(s.can_dial for s in self.bridge.sources.values())
        return self.remote is not None and any(
            s.kind in ("ami", "modem") for s in self.settings.cti.sources
        )

    async def dial(self, extension: str | None, number: str, *, line: str = "") -> str:
        """Click-to-dial (C7): a dial-capable source of the in-process bridge — a PBX (AMI
        ``Originate`` to the operator's extension) or a modem (``ATD``) before the simulator,
        the operator's line first — else a standalone bridge through Redis. Returns the call
        id; raises :class:`DialError`."""
        if self.bridge is not None:
            sources = [s for s in self.bridge.sources.values() if s.can_dial]
            sources.sort(key=lambda s: (s.kind == "simulator", s.line != line))
            errors: list[str] = []
            for src in sources:
                try:
                    return await self.bridge.dial(extension, number, source=src.name)
                except DialError as exc:
                    errors.append(str(exc))
            if errors:
                raise DialError("; ".join(errors))
        if self.remote is not None:
            return await self.remote.request_dial(extension, number, line=line)
        raise DialError("no source can dial")

    def _first_ring(self, event: CallEvent) -> bool:
        """The first ringing event of a call in this process: its pop may go out before the
        call is written. Later ones (another leg of a ring group, a repeat) are written first,
        so a call already taken never pops again."""
        key = (event.source, event.call_id)
        if key in self._rung:
            return False
        self._rung[key] = None
        if len(self._rung) > 10_000:
            self._rung.popitem(last=False)
        return True

    async def _deliver(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            await self.hub.deliver(d.staff_ids, d.html)

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(5)
            try:
                async with transaction(self.sessionmaker) as session:
                    deliveries = await expire_ringing(
                        session, ring_timeout_s=self.settings.cti.ring_timeout_s
                    )
                await self._deliver(deliveries)
                if deliveries:
                    self.board.poke("call")
            except Exception:
                log.exception("ring expiry failed")


class ReplayGuard:
    """Signatures of webhook requests already received, kept for the tolerance window: in
    Redis when configured (``SET NX EX``, shared by every app process), else in memory."""

    def __init__(self, redis: Redis | None = None, *, prefix: str = "yebisu") -> None:
        self.redis = redis
        self.prefix = prefix
        self._seen: dict[str, float] = {}

    async def seen(self, source: str, signature: str, *, ttl_s: float) -> bool:
        """Remember ``signature`` of ``source``; True when it was already remembered."""
        digest = hashlib.sha256(signature.strip().lower().encode()).hexdigest()[:32]
        key = f"{self.prefix}:cti:webhook-seen:{source}:{digest}"
        if self.redis is not None:
            fresh = await self.redis.set(key, b"1", nx=True, ex=max(1, int(ttl_s)))
            return not fresh
        now = time.monotonic()
        if len(self._seen) > 1000:
            for k in [k for k, until in self._seen.items() if until <= now]:
                del self._seen[k]
        until = self._seen.get(key)
        if until is not None and until > now:
            return True
        self._seen[key] = now + ttl_s
        return False


def _runtime(request: Request) -> CtiRuntime:
    runtime: CtiRuntime = request.app.state.cti
    return runtime


class _BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (:class:`_BodyTooLarge`) as soon as it passes ``limit``
    bytes: a declared ``Content-Length`` is checked before reading anything."""
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        if not (declared.isascii() and declared.isdigit()) or len(declared) > 12:
            raise WebhookError("Content-Length: not a number")
        if int(declared) > limit:
            raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(name: str, status: int, message: str) -> JSONResponse:
    # One line per refused request; never the body (it carries callers' numbers).
    log.warning("webhook %s: refused with %d: %s", name, status, message)
    return JSONResponse({"error": message}, status_code=status)


async def webhook(request: Request) -> Response:
    """``POST /cti/webhook/{source}``: a cloud PBX's call event, HMAC-SHA256 signed over a
    timestamp and the body (``docs/webhook.md``)."""
    settings: Settings = request.app.state.settings
    name = request.path_params["source"]
    config = settings.source(name)
    if not isinstance(config, WebhookSourceConfig) or not config.enabled:
        return JSONResponse({"error": "unknown source"}, status_code=404)
    try:
        body = await _read_body(request, WEBHOOK_MAX_BYTES)
    except _BodyTooLarge:
        return _refuse(name, 413, f"body larger than {WEBHOOK_MAX_BYTES} bytes")
    except WebhookError as exc:
        return _refuse(name, 400, str(exc))
    signature = request.headers.get(SIGNATURE_HEADER)
    try:
        check_signature(
            config.secret,
            body,
            signature,
            request.headers.get(TIMESTAMP_HEADER),
            tolerance_s=config.tolerance_s,
        )
    except WebhookStaleError as exc:
        return _refuse(name, 401, str(exc))
    except WebhookAuthError:
        return _refuse(name, 401, "bad signature")
    assert signature is not None
    runtime = _runtime(request)
    if await runtime.replays.seen(name, signature, ttl_s=2 * config.tolerance_s + 1):
        return _refuse(name, 409, "request already received")
    try:
        events = parse_webhook(name, config.line, body)
    except WebhookError as exc:
        return _refuse(name, 400, str(exc))
    for event in events:
        await runtime.publish(event)
    return Response(status_code=204)


def _sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def simulate(request: Request) -> Response:
    """``POST /cti/simulate``: ``yebisu simulate-call`` on the same machine, signed with the
    server's secret key."""
    try:
        body = await _read_body(request, WEBHOOK_MAX_BYTES)
    except _BodyTooLarge:
        return JSONResponse({"error": "body too large"}, status_code=413)
    except WebhookError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    secret = resolve_secret_key(request.app.state.settings, request.app.state.var_dir)
    if not hmac.compare_digest(_sign(secret, body), request.headers.get(SIGNATURE_HEADER, "")):
        return JSONResponse({"error": "bad signature"}, status_code=401)
    sim = _runtime(request).simulator()
    if sim is None:
        return JSONResponse({"error": "no simulator source is running"}, status_code=409)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return JSONResponse({"error": "body: not JSON"}, status_code=400)
    if not isinstance(data, dict):
        return JSONResponse({"error": "body: not a JSON object"}, status_code=400)
    action = data.get("action", "ring")
    if action == "ring":
        call_id = await sim.ring(
            str(data.get("number", "")), extension=data.get("extension"), line=data.get("line")
        )
    elif action in ("answer", "hangup") and data.get("call_id"):
        call_id = str(data["call_id"])
        if action == "answer":
            await sim.answer(call_id, extension=data.get("extension"))
        else:
            await sim.hangup(call_id)
    else:
        return JSONResponse({"error": "bad action"}, status_code=400)
    return JSONResponse({"call_id": call_id})


def simulate_call(
    settings: Settings,
    *,
    number: str,
    extension: str | None = None,
    line: str | None = None,
    url: str | None = None,
    action: str = "ring",
    call_id: str | None = None,
) -> str:
    """Ring (or answer / hang up) the running server's simulator; returns the call id."""
    from pathlib import Path

    host = settings.server.host if settings.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
    base = url or f"http://{host}:{settings.server.port}"
    body = json.dumps(
        {
            "action": action,
            "number": number,
            "extension": extension,
            "line": line,
            "call_id": call_id,
        }
    ).encode()
    secret = resolve_secret_key(settings, Path("var"))
    req = urllib.request.Request(
        base.rstrip("/") + "/cti/simulate",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: _sign(secret, body)},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return str(json.loads(resp.read())["call_id"])
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"server answered {exc.code}: {exc.read().decode()}") from None


async def run_bridge_process(settings: Settings) -> None:
    """``yebisu bridge``: run the configured sources and publish their events to Redis."""
    await bridge_main(
        settings.cti.sources, settings.redis.url, prefix=settings.redis.channel_prefix
    )


routes = [
    Route("/cti/webhook/{source}", webhook, methods=["POST"]),
    Route("/cti/simulate", simulate, methods=["POST"]),
]
