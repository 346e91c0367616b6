"""The Starlette application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from app.auth import routes as auth_routes
from app.config import Settings, load_settings, resolve_secret_key
from app.db import make_engine, make_sessionmaker
from app.home import routes as home_routes
from app.security import AuthMiddleware, CSRFMiddleware
from app.web import STATIC_DIR, DBSessionMiddleware, current_staff

log = logging.getLogger("yebisu")


async def websocket_endpoint(ws: WebSocket) -> None:
    staff = current_staff(ws)
    if staff is None:  # AuthMiddleware already refused; defensive.
        await ws.close(code=4401)
        return
    await ws.accept()
    try:
        while True:
            await ws.receive_text()
    except Exception:
        return


def create_app(settings: Settings | None = None, *, var_dir: Path | None = None) -> Starlette:
    """Build the application for ``settings`` (loaded from file and environment if omitted)."""
    settings = settings or load_settings()
    var_dir = var_dir or Path("var")
    engine = make_engine(
        settings.database.url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    sessionmaker = make_sessionmaker(engine)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    routes: list[BaseRoute] = [
        *auth_routes.routes,
        *home_routes.routes,
        WebSocketRoute("/ws", websocket_endpoint),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=resolve_secret_key(settings, var_dir),
            session_cookie="yebisu_session",
            max_age=settings.server.session_max_age_s,
            same_site="lax",
            https_only=settings.server.https_only,
        ),
        Middleware(AuthMiddleware),
        Middleware(CSRFMiddleware),
        Middleware(DBSessionMiddleware, sessionmaker=sessionmaker),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    return app
