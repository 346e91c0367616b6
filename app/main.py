"""The Starlette application."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.admin import routes as admin_routes
from app.auth import routes as auth_routes
from app.auth.sessions import SessionMiddleware, session_state, watch_socket
from app.board import routes as board_routes
from app.board.notify import subscribe_board
from app.calls import routes as calls_routes
from app.calls.service import pops_for
from app.config import Settings, load_settings
from app.cti_runtime import CtiRuntime
from app.cti_runtime import routes as cti_routes
from app.customers import routes as customers_routes
from app.db import make_engine, make_sessionmaker, transaction
from app.errors import exception_handlers, install_log_filter
from app.events import EventBus
from app.headers import SecurityHeadersMiddleware
from app.home import routes as home_routes
from app.hub import Hub, RedisHub
from app.inputs import InputGuardMiddleware
from app.masters import routes as masters_routes
from app.merge import routes as merge_routes
from app.orders import history_routes
from app.orders import routes as orders_routes
from app.outbound import routes as outbound_routes
from app.responses import routes as responses_routes
from app.runs import routes as jobs_routes
from app.runs.runtime import JobRuntime
from app.security import AuthMiddleware, CSRFMiddleware
from app.subscriptions import routes as subscriptions_routes
from app.web import STATIC_DIR, DBSessionMiddleware, current_staff

log = logging.getLogger("yebisu")


async def websocket_endpoint(ws: WebSocket) -> None:
    """One connection per tab; on (re)connect it gets back the calls still ringing or active
    for this operator, then whatever the hub pushes."""
    staff = current_staff(ws)
    if staff is None:  # AuthMiddleware already refused; defensive.
        await ws.close(code=4401)
        return
    app = ws.app
    hub: Hub = app.state.hub
    await ws.accept()
    hub.register(staff.id, ws, session=session_state(ws).id_hash or "")

    async def replay() -> list[str]:
        async with transaction(app.state.sessionmaker) as session:
            return await pops_for(
                session, staff_id=staff.id, ring_timeout_s=app.state.settings.cti.ring_timeout_s
            )

    try:
        # Shielded: a tab that closes at once must not cancel the query mid-checkin.
        future = asyncio.ensure_future(replay())
        pending: set[asyncio.Future[list[str]]] = app.state.pending_replays
        pending.add(future)
        future.add_done_callback(pending.discard)
        pops = await asyncio.shield(future)
        for html in pops:
            await ws.send_text(html)
        # Receives (htmx ws may send; nothing to do with it yet) until the tab goes, and
        # closes the socket (4401) once its session has ended or expired.
        await watch_socket(ws, app.state.engine, idle_s=app.state.settings.server.session_idle_s)
    except WebSocketDisconnect:
        pass
    finally:
        hub.unregister(staff.id, ws)


def _freeze_startup_objects() -> None:
    """Move what start-up made (modules, templates, number metadata, the pool) out of the
    collector's reach: a full collection then scans only what was made since (16–35 ms with
    250 websockets on the bench machine, against ~120 ms for everything), and the pop it
    stalls waits that much less (as Instagram does with ``gc.freeze``)."""
    from app.web import templates
    from cti_bridge.numbers import display_national

    for name in ("calls/_pop.html", "calls/_presence.html", "board/_live.html"):
        templates.env.get_template(name)
    display_national("+81312345678")
    gc.collect()
    gc.freeze()
    # What is left to scan (~50,000 objects with 250 websockets: ~30 ms on a slow machine) is
    # scanned in full 10 times less often than by default (after 100 middle collections, not
    # 10); the young generations stay small and quick as by default.
    young, middle, _old = gc.get_threshold()
    gc.set_threshold(young, middle, 100)


def create_app(
    settings: Settings | None = None, *, var_dir: Path | None = None, freeze_gc: bool = False
) -> Starlette:
    """Build the application for ``settings`` (loaded from file and environment if omitted).
    ``freeze_gc``: the serving process freezes its start-up objects (see
    :func:`_freeze_startup_objects`); tests, which build many apps, do not."""
    settings = settings or load_settings()
    var_dir = var_dir or Path("var")
    engine = make_engine(
        settings.database.url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    events = EventBus()  # what features publish after their commits (app.events)
    sessionmaker = make_sessionmaker(engine, events=events)
    hub: Hub = (
        RedisHub(settings.redis.url, settings.redis.channel_prefix) if settings.redis.url else Hub()
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        cti = CtiRuntime(settings, sessionmaker, hub)
        app.state.cti = cti
        await cti.start()
        unsubscribe_board = subscribe_board(events, cti.board)
        jobs = JobRuntime(settings, sessionmaker)
        app.state.jobs = jobs
        await jobs.start()
        app.state.pending_replays = set()
        if freeze_gc:
            _freeze_startup_objects()
        try:
            yield
        finally:
            await jobs.stop()
            unsubscribe_board()
            await cti.stop()
            await hub.stop()
            # A replay shielded from its closed tab still holds a connection: let it check in
            # before the pool is closed (else the connection is dropped unclosed).
            if app.state.pending_replays:
                await asyncio.wait(app.state.pending_replays, timeout=5)
            await engine.dispose()

    routes: list[BaseRoute] = [
        *auth_routes.routes,
        *home_routes.routes,
        *calls_routes.routes,
        *customers_routes.routes,
        *merge_routes.routes,
        *responses_routes.routes,
        *orders_routes.routes,
        *history_routes.routes,
        *subscriptions_routes.routes,
        *masters_routes.routes,
        *jobs_routes.routes,
        *outbound_routes.routes,
        *board_routes.routes,
        *cti_routes,
        *admin_routes.routes,
        WebSocketRoute("/ws", websocket_endpoint),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeadersMiddleware, allowed_origins=settings.server.allowed_origins),
        Middleware(
            SessionMiddleware,
            engine=engine,
            idle_s=settings.server.session_idle_s,
            max_age_s=settings.server.session_max_age_s,
            https_only=settings.server.https_only,
        ),
        Middleware(AuthMiddleware, sessionmaker=sessionmaker),
        Middleware(InputGuardMiddleware, config=settings.inputs),
        Middleware(CSRFMiddleware),
        Middleware(DBSessionMiddleware, sessionmaker=sessionmaker),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers=exception_handlers,
    )
    install_log_filter()
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    app.state.events = events
    app.state.hub = hub
    app.state.var_dir = var_dir
    return app
